// The S² algorithm on typed arrays: public surface of src/s2.
export * from './tensor.js';
export * from './plan.js';
export { bicubicAxis, resizeBicubic, resizeBicubicRows, padBottomRight } from './resize.js';
export { areaBounds, areaResize, areaResizeInto } from './pool.js';
export { splitChessboard, splitChessboardInto, chessboardRowWriter, mergeChessboard } from './chessboard.js';
export { mergeTokens, areaPoolTokensInto, averagePrefixInto } from './channels-last.js';
export { multiscaleForward, scaleInput, type Backbone, type S2Timings } from './multiscale.js';
