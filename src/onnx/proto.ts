/** The one place that names the onnx-buf schema; everything else imports from here. */
export {
  ModelProtoSchema,
  GraphProtoSchema,
  NodeProtoSchema,
  TensorProtoSchema,
  AttributeProtoSchema,
  ValueInfoProtoSchema,
  StringStringEntryProtoSchema,
  OperatorSetIdProtoSchema,
  TypeProtoSchema,
  TensorShapeProtoSchema,
  SparseTensorProtoSchema,
  AttributeProto_AttributeType as AttributeType,
  TensorProto_DataLocation as DataLocation,
} from 'onnx-buf';
export type {
  ModelProto,
  GraphProto,
  NodeProto,
  TensorProto,
  SparseTensorProto,
  AttributeProto,
  ValueInfoProto,
  StringStringEntryProto,
  OperatorSetIdProto,
  TypeProto,
  FunctionProto,
} from 'onnx-buf';
