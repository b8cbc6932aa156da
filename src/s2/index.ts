// The S² algorithm on typed arrays: public surface of src/s2.
export * from './tensor.js';
export * from './plan.js';
export { bicubicAxis, resizeBicubic, padBottomRight } from './resize.js';
export { areaBounds, areaResize, areaResizeInto } from './pool.js';
export { splitChessboard, splitChessboardInto, mergeChessboard, cropTopLeft } from './chessboard.js';
export { tokensToMap, averagePrefix, assembleTokens } from './tokens.js';
export { multiscaleForward, scaleInput, type Backbone, type S2Timings } from './multiscale.js';
