/** Reading PyTorch checkpoints safely, reading/writing safetensors, and small zip archives (.npz). */
export {
  readTorchCheckpoint,
  readTensorData,
  streamTensorData,
  isContiguous,
  tensorNumel,
  tensorNbytes,
  type TorchCheckpoint,
  type TensorRef,
  type StorageRef,
} from './torch.js';
export {
  readSafetensorsHeader,
  readSafetensorsTensor,
  writeSafetensors,
  isDType,
  DTYPE_SIZES,
  type DType,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  type SafetensorsWriteTensor,
} from './safetensors.js';
export { zipStore, readZipEntries } from './zip.js';
export { unpickle, isTuple, isPlaceholder, PickleGlobal, PickleCall, PyCallable, type UnpickleOptions, type UnpickleResult, type ByteSource } from './pickle.js';
