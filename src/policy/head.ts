// The policy head: any ONNX model whose inputs are bound by name to pooled S² features and the joint state, and
// whose output is one action [D] or a chunk [T×D]. normalise → model → unnormalise, as LeRobot's wrapper does.
import { existsSync } from 'node:fs';
import type ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { OrtSession } from '../backbone/ort-session.js';
import { UserError } from '../errors.js';
import { loadStats, normalizeInPlace, statsLength, unnormalizeInPlace, type PolicyStats, type StatsEntry } from './stats.js';

export interface PolicyHeadOptions {
  model: string;
  /** Statistics JSON; omitted = no normalisation. */
  stats?: string;
  /** ONNX input name for the features vector. */
  featuresInput: string;
  /** ONNX input name for the joint state vector, when the policy takes one. */
  stateInput?: string;
  /** ONNX output name; defaults to the model's only output. */
  output?: string;
  threads?: number;
}

export interface PolicyShape {
  featureDim: number;
  stateDim: number;
  chunk: number;
  actionDim: number;
}

function lastDims(file: string, what: string, dims: readonly (number | string)[], count: number): number[] {
  const tail = dims.slice(-count);
  if (tail.length !== count || tail.some((d) => typeof d !== 'number' || d <= 0)) {
    throw new UserError(`${file}: ${what} has shape [${dims.join(', ')}]; its last ${count === 1 ? 'dimension' : `${count} dimensions`} must be fixed`);
  }
  return tail as number[];
}

export class PolicyHead {
  private constructor(
    readonly file: string,
    private readonly session: OrtSession,
    readonly shape: PolicyShape,
    private readonly options: PolicyHeadOptions,
    private readonly output: string,
    private readonly stats: { features?: StatsEntry; state?: StatsEntry; action?: StatsEntry },
    private readonly batched: { features: boolean; state: boolean },
  ) {}

  static async load(o: PolicyHeadOptions): Promise<PolicyHead> {
    const file = o.model;
    if (!existsSync(file)) throw new UserError(`${file}: no such policy model file`);
    let session: OrtSession;
    try {
      const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], interOpNumThreads: 1, logSeverityLevel: 3 };
      if (o.threads !== undefined) opts.intraOpNumThreads = o.threads;
      const bytes = readFileSync(file);
      if (bytes.byteLength === 0) throw new UserError(`${file}: empty file (0 bytes), not an ONNX model`);
      session = await OrtSession.create(bytes, opts);
    } catch (e) {
      throw new UserError(`${file}: onnxruntime cannot load the policy model (${(e as Error).message.split('\n')[0]})`);
    }
    try {
      return PolicyHead.bind(file, session, o);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  private static bind(file: string, session: OrtSession, o: PolicyHeadOptions): PolicyHead {
    const inputs = new Map(session.inputs.map((m) => [m.name, m]));
    const names = [...inputs.keys()].join(', ');
    const input = (name: string, key: string) => {
      const m = inputs.get(name);
      if (!m) throw new UserError(`${file}: policy.${key} names input '${name}', the model's inputs are: ${names}`);
      if (m.type !== 'float32') throw new UserError(`${file}: input '${name}' must be a float32 tensor`);
      return m;
    };
    const fm = input(o.featuresInput, 'features_input');
    const sm = o.stateInput !== undefined ? input(o.stateInput, 'state_input') : undefined;
    const bound = new Set([o.featuresInput, o.stateInput].filter((x): x is string => x !== undefined));
    const unbound = [...inputs.keys()].filter((n) => !bound.has(n));
    if (unbound.length > 0) throw new UserError(`${file}: policy inputs ${unbound.join(', ')} are not bound (set policy.features_input / policy.state_input)`);
    const outputNames = session.outputs.map((m) => m.name);
    const output = o.output ?? (outputNames.length === 1 ? outputNames[0] : undefined);
    if (output === undefined) throw new UserError(`${file}: the model has outputs ${outputNames.join(', ')}; choose one with policy.output`);
    const om = session.outputs.find((m) => m.name === output);
    if (!om) throw new UserError(`${file}: no output named '${output}' (outputs: ${outputNames.join(', ')})`);
    if (om.type === 'non-tensor') throw new UserError(`${file}: output '${output}' is not a tensor`);
    const featureDim = lastDims(file, `input '${o.featuresInput}'`, fm.dims, 1)[0];
    const stateDim = sm ? lastDims(file, `input '${o.stateInput}'`, sm.dims, 1)[0] : 0;
    // [D] or [B, D] (B symbolic or 1): one action; [T, D] with a fixed T > 1, or [B, T, D]: a chunk of T actions.
    let chunk = 1;
    let actionDim: number;
    const first = om.dims[0];
    const unbatchedChunk = om.dims.length === 2 && typeof first === 'number' && first > 1;
    if (om.dims.length >= 3 || unbatchedChunk) [chunk, actionDim] = lastDims(file, `output '${output}'`, om.dims, 2);
    else actionDim = lastDims(file, `output '${output}'`, om.dims, 1)[0];

    const stats: PolicyStats = o.stats !== undefined ? loadStats(o.stats) : {};
    const pick = (key: string, dim: number): StatsEntry | undefined => {
      const e = stats[key];
      if (e && statsLength(e) !== dim) throw new UserError(`${o.stats}: '${key}' has ${statsLength(e)} values, the policy's dimension is ${dim}`);
      return e;
    };
    const chosen = {
      features: pick('observation.features', featureDim),
      state: stateDim ? pick('observation.state', stateDim) : undefined,
      action: pick('action', actionDim),
    };
    return new PolicyHead(file, session, { featureDim, stateDim, chunk, actionDim }, o, output, chosen, {
      features: fm.dims.length > 1,
      state: sm !== undefined && sm.dims.length > 1,
    });
  }

  /** Runs the policy: returns chunk×actionDim unnormalised actions. Inputs are not modified. */
  async act(features: Float32Array, state?: Float32Array): Promise<Float32Array> {
    const { featureDim, stateDim } = this.shape;
    if (features.length !== featureDim) throw new Error(`policy expects ${featureDim} features, got ${features.length}`);
    const f = Float32Array.from(features);
    if (this.stats.features) normalizeInPlace(f, this.stats.features);
    const feeds: Record<string, { dims: number[]; data: Float32Array }> = {
      [this.options.featuresInput]: { data: f, dims: this.batched.features ? [1, featureDim] : [featureDim] },
    };
    if (this.options.stateInput !== undefined) {
      if (!state || state.length !== stateDim) throw new Error(`policy expects a state of ${stateDim} values, got ${state?.length ?? 'none'}`);
      const s = Float32Array.from(state);
      if (this.stats.state) normalizeInPlace(s, this.stats.state);
      feeds[this.options.stateInput] = { data: s, dims: this.batched.state ? [1, stateDim] : [stateDim] };
    }
    const res = await this.session.run(feeds, [this.output]);
    const out = Float32Array.from(res[this.output].data);
    const expected = this.shape.chunk * this.shape.actionDim;
    if (out.length !== expected) throw new Error(`policy returned ${out.length} values, expected ${this.shape.chunk}×${this.shape.actionDim}`);
    if (this.stats.action) unnormalizeInPlace(out, this.stats.action);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
