export { applyPlan, type ApplyPlanOptions, type ApplyPlanResult, type RewriteSummary } from './apply-plan.js';
export { resolveLayerPlan, uniformPlan, type Selection, type UniformPlanOptions } from './plan.js';
export { canRaiseOpset, opsetRaiseBlockers, BREAKING_OPSETS } from './opset.js';
export { RULES } from './rules/index.js';
export type { Edit, OpRule, RuleContext, WeightSpec, ResolvedLayerPlan } from './edits.js';
export { rangesNeeded } from './ranges-needed.js';
export type { WeightQuantizer, WeightQuantizerRequest, WeightQuantizerResult, LayerAlgorithm } from './weight-quantizer.js';
export { scaleInputChannels, type ChannelScaling, type ChannelScalingFold } from './channel-scales.js';
export * from './fold-batchnorm.js';
