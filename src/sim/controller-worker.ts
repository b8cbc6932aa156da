// Worker thread that builds the detector head's controller rows from expert episodes and fits the controller, so that
// it trains on the second core while the detector trains on the first (see fitControllerInWorker).
import { parentPort, workerData } from 'node:worker_threads';
import { fitController, type ControllerParams } from '../policy/detector.js';
import { controllerRows, type ControllerJob } from './controller-rows.js';

const job = workerData as ControllerJob;
const rows = controllerRows(job.episodes, job.seed, job.chunk, job.perturbed, job.noisePx, job.simOptions);
const fit = fitController(rows, job.fit);
const p: ControllerParams = fit.params;
const buffers = [p.stateMean, p.stateStd, p.actionMean, p.actionStd, p.w1, p.b1, p.w2, p.b2, p.w3, p.b3].map((a) => a.buffer as ArrayBuffer);
parentPort!.postMessage({ params: p, rows: rows.rows, trainMse: fit.trainMse, seconds: fit.seconds }, buffers);
