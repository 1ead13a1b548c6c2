// npm run screenshots: the README's report screenshots (docs/*.png) from fixtures/reports/*.json, rendered by
// dist/report and photographed by headless chromium (apt-get install chromium). Build first (npx tsc -p .).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { searchHtml, sensitivityHtml } from '../dist/report/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chromium = process.env.CHROMIUM ?? 'chromium';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qtool-shots-'));
const shots = [
  { report: 'search-fmnist-cnn-static.json', render: searchHtml, png: 'search-report.png', size: '980,1000' },
  { report: 'sensitivity-fmnist-cnn.json', render: sensitivityHtml, png: 'sensitivity-report.png', size: '1320,1080' },
];
for (const s of shots) {
  const html = path.join(tmp, s.png.replace('.png', '.html'));
  fs.writeFileSync(html, s.render(JSON.parse(fs.readFileSync(path.join(root, 'fixtures/reports', s.report), 'utf8'))));
  const out = path.join(root, 'docs', s.png);
  const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${s.size}`, `--screenshot=${out}`, `file://${html}`], { encoding: 'utf8' });
  if (r.status !== 0 || !fs.existsSync(out)) throw new Error(`${chromium} failed on ${s.report}: ${r.stderr}`);
  console.log(`${path.relative(root, out)}: ${fs.statSync(out).size} bytes`);
}
fs.rmSync(tmp, { recursive: true, force: true });
