// ROS 2 recordings: read and write them as `ros2 bag record` does (mcap and sqlite3 storage, rosbag2 folders), with the
// message definitions we use.
export { McapRosReader, isMessageOf, type McapRosReaderOptions, type TopicInfo, type BagMessage, type DecodeFailure, type MessageQuery } from './reader.js';
export { McapRosWriter, type McapRosWriterOptions, type ChannelOptions, type RosChannel } from './writer.js';
export { REGISTERED_TYPES, canonicalType, msgText, msgDependencies, rosbag2DefinitionText, parseRos2Msg, registeredDefinitions } from '../msgs/definitions.js';
export { defaultOfferedQos, serializeOfferedQos, parseOfferedQos, INFINITE_DURATION, type QosProfile, type QosDuration } from './qos.js';
export { checkMessage, definitionMap, MessageShapeError } from './validate.js';
export { locateCdrFault } from './cdr-locate.js';
export type * from './messages.js';
export { openRecordingPath, Rosbag2Reader, type RecordingReader, type OpenRecordingOptions, type StorageId } from './rosbag2-reader.js';
export { SqliteRosReader, isSqlite, type SqliteRosReaderOptions } from './sqlite-reader.js';
export { SqliteRosWriter, type SqliteRosWriterOptions, type SqliteLayout } from './sqlite-writer.js';
export {
  Rosbag2Writer,
  createRecordingWriter,
  isMcapFileName,
  isDb3FileName,
  parseRosDistro,
  parseStorageId,
  ROS_DISTROS,
  type RosDistro,
  type RecordingWriter,
  type Rosbag2WriterOptions,
  type OutputOptions,
} from './rosbag2-writer.js';
export {
  parseRosbag2Metadata,
  serializeRosbag2Metadata,
  METADATA_FILE,
  JAZZY_METADATA_VERSION,
  HUMBLE_METADATA_VERSION,
  parseStoredRosbag2Metadata,
  serializeStoredRosbag2Metadata,
  type Rosbag2Metadata,
  type Rosbag2Topic,
  type Rosbag2File,
  type Rosbag2CompressionMode,
} from './rosbag2.js';
