// An S² Backbone on onnxruntime-node: loads any ONNX vision model, finds its image input and feature output,
// runs crops in as few calls as the model's batch axis allows, and detects the output layout.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { OrtSession, type IoInfo } from './ort-session.js';
import type { Backbone } from '../s2/multiscale.js';
import type { OutputShape, S2Plan } from '../s2/plan.js';
import type { Tensor } from '../s2/tensor.js';
import { inferLayout, type Layout } from './layout.js';
import { UserError } from '../errors.js';
import { readModelFile } from '../onnx/file.js';
import { decodeModel, metadataOf, type ModelProto } from '../onnx/model.js';

export type Dim = number | string;

export interface BackboneOptions {
  /** Name of the image input; found automatically when the model has one rank-4 float input. */
  inputName?: string;
  /** Name of the feature output; by default the first rank-3 or rank-4 float output. */
  outputName?: string;
  /** Intra-op threads; onnxruntime's default (all cores) when unset. */
  threads?: number;
  /** Execution providers in order of preference: 'cpu' (default), 'cuda', 'tensorrt', … */
  executionProviders?: string[];
  outputShape?: OutputShape;
  numPrefixToken?: number;
}

/** A user-correctable problem with a model file or its options; one line naming the file. */
export class ModelError extends UserError {
  override name = 'ModelError';
}

/** Providers that onnxruntime-node loads from separate shared libraries, which the npm package does not bundle. */
const EXTERNAL_PROVIDERS: Record<string, string> = {
  cuda: 'libonnxruntime_providers_cuda.so',
  tensorrt: 'libonnxruntime_providers_tensorrt.so',
};

function checkProviders(providers: string[]): void {
  const supported = ort.listSupportedBackends().map((b) => b.name);
  const binDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  for (const p of providers) {
    if (!supported.includes(p)) throw new ModelError(`execution provider '${p}' is not known to onnxruntime-node (known: ${supported.join(', ')})`);
    const lib = EXTERNAL_PROVIDERS[p];
    if (lib && !existsSync(join(binDir, 'bin', 'napi-v6', process.platform, process.arch, lib))) {
      throw new ModelError(
        `execution provider '${p}' is not installed: ${lib} is missing from onnxruntime-node ` +
          `(install it with: npm rebuild onnxruntime-node --ignore-scripts=false --onnxruntime-node-install=cuda12)`,
      );
    }
  }
}

export class OnnxBackbone implements Backbone {
  private layouts = new Map<string, Layout>();
  calls = 0;

  private constructor(
    readonly file: string,
    private readonly session: OrtSession,
    readonly inputs: IoInfo[],
    readonly outputs: IoInfo[],
    readonly inputName: string,
    readonly outputName: string,
    readonly metadata: Record<string, string>,
    private readonly options: BackboneOptions,
  ) {}

  static async load(file: string, options: BackboneOptions = {}): Promise<OnnxBackbone> {
    if (!existsSync(file)) throw new ModelError(`${file}: no such model file`);
    if (!statSync(file).isFile()) throw new ModelError(`${file}: not a file`);
    // Weights in external data files (PyTorch's exporter writes them) are inlined: sessions load from bytes.
    const read = readModelFile(file);
    return OnnxBackbone.create(read.bytes(), read.model, file, options);
  }

  /** A model already in memory; `file` names it in messages. */
  static async fromBytes(bytes: Uint8Array, file: string, options: BackboneOptions = {}): Promise<OnnxBackbone> {
    return OnnxBackbone.create(bytes, decodeModel(bytes, file), file, options);
  }

  private static async create(bytes: Uint8Array, model: ModelProto, file: string, options: BackboneOptions): Promise<OnnxBackbone> {
    const metadata = metadataOf(model);
    const providers = options.executionProviders ?? ['cpu'];
    checkProviders(providers);
    let session: OrtSession;
    try {
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: providers,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        // No busy-waiting of idle inference threads: the main thread resizes, merges and ingests right after a
        // run, and spinning threads would take its core.
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      };
      if (options.threads !== undefined) sessionOptions.intraOpNumThreads = options.threads;
      session = await OrtSession.create(bytes, sessionOptions);
    } catch (e) {
      const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      throw new ModelError(`${file}: onnxruntime cannot load it as an ONNX model (${msg})`);
    }
    const inputs = session.inputs;
    const outputs = session.outputs;
    let inputName: string;
    let outputName: string;
    try {
      inputName = pickInput(file, inputs, options.inputName ?? declaredInput(metadata, inputs));
      outputName = pickOutput(file, outputs, options.outputName);
    } catch (e) {
      await session.release();
      throw e;
    }
    return new OnnxBackbone(file, session, inputs, outputs, inputName, outputName, metadata, options);
  }

  get input(): IoInfo {
    return this.inputs.find((i) => i.name === this.inputName) as IoInfo;
  }

  /** The fixed batch size, or undefined when the batch axis is dynamic. */
  get fixedBatch(): number | undefined {
    const b = this.input.dims[0];
    return typeof b === 'number' && b > 0 ? b : undefined;
  }

  /** The fixed input height and width, where the model has them. */
  get fixedSize(): [number, number] | undefined {
    const [, , h, w] = this.input.dims;
    return typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? [h, w] : undefined;
  }

  get inputChannels(): number | undefined {
    const c = this.input.dims[1];
    return typeof c === 'number' && c > 0 ? c : undefined;
  }

  /** The crop side to use by default: the model's fixed input, else its metadata's s2.image_size. */
  get nativeSize(): number | undefined {
    const fixed = this.fixedSize;
    if (fixed && fixed[0] === fixed[1]) return fixed[0];
    const meta = Number(this.metadata['s2.image_size']);
    return Number.isInteger(meta) && meta > 0 ? meta : undefined;
  }

  /** Throws a one-line error when any crop of the plan does not fit the model's fixed input. */
  assertPlanFits(plan: S2Plan): void {
    const fixed = this.fixedSize;
    if (this.inputChannels !== undefined && plan.channels !== this.inputChannels) {
      throw new ModelError(`${this.file}: model takes ${this.inputChannels} channels, the input has ${plan.channels}`);
    }
    if (!fixed) return;
    for (const s of plan.scales) {
      if (s.cropSize[0] !== fixed[0] || s.cropSize[1] !== fixed[1]) {
        const fit = fixed[0] === fixed[1] ? `--max-split-size ${fixed[0]} with scale sizes that are multiples of ${fixed[0]}` : 'a crop size equal to it';
        throw new ModelError(
          `${this.file}: crop size ${s.cropSize[0]}×${s.cropSize[1]} (scale ${s.size[0]}×${s.size[1]}) does not fit the model's ` +
            `fixed input ${fixed[0]}×${fixed[1]}; use ${fit}`,
        );
      }
    }
  }

  /** Runs the crops (N×C×h×w). The crops' buffer is handed to the inference thread when the view spans all of it. */
  async forward(crops: Tensor): Promise<Tensor> {
    const [n, c, h, w] = crops.dims;
    const fixed = this.fixedBatch;
    if (fixed === undefined || fixed === n) return this.run(crops);
    // Fixed batch axis: run in chunks of that size, zero-padding the last one and dropping its padded rows.
    const per = c * h * w;
    let out: Float32Array | undefined;
    let dims: number[] = [];
    for (let start = 0; start < n; start += fixed) {
      const take = Math.min(fixed, n - start);
      const chunk = new Float32Array(fixed * per);
      chunk.set(crops.data.subarray(start * per, (start + take) * per));
      const res = await this.run({ dims: [fixed, c, h, w], data: chunk });
      const rowSize = res.data.length / fixed;
      if (!out) {
        out = new Float32Array(n * rowSize);
        dims = [n, ...res.dims.slice(1)];
      }
      out.set(res.data.subarray(0, take * rowSize), start * rowSize);
    }
    return { dims, data: out ?? new Float32Array(0) };
  }

  private run(x: Tensor): Promise<Tensor> {
    return this.runFeeds({ [this.inputName]: x });
  }

  /**
   * One run with a tensor for each named input (a compiled S² model with one input per scale takes several), the
   * feature output returned. Buffers that views span whole are handed to the inference thread.
   */
  async runFeeds(feeds: Record<string, Tensor>): Promise<Tensor> {
    let res: Awaited<ReturnType<OrtSession['run']>>;
    try {
      res = await this.session.run(feeds, [this.outputName]);
    } catch (e) {
      const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      const given = Object.entries(feeds).map(([k, t]) => `[${t.dims.join(', ')}]${Object.keys(feeds).length > 1 ? ` ${k}` : ''}`);
      throw new ModelError(`${this.file}: inference failed on input ${given.join(', ')} (${msg})`);
    }
    this.calls++;
    const out = res[this.outputName];
    if (out.type !== 'float32') throw new ModelError(`${this.file}: output '${this.outputName}' is ${out.type}, expected float32`);
    return { dims: out.dims, data: out.data };
  }

  /** The layout of one crop's output, from a probe run on a zero crop (cached per crop size). */
  /**
   * The output layout for one crop size, probed once. `given` (the user's --output-shape / --num-prefix-token or
   * s2 options) wins over the options the backbone was loaded with, so the probe reads what the run will use.
   */
  async layoutFor(cropSize: [number, number], given: { outputShape?: OutputShape; numPrefixToken?: number } = {}): Promise<Layout> {
    const outputShape = given.outputShape ?? this.options.outputShape;
    const numPrefixToken = given.numPrefixToken ?? this.options.numPrefixToken;
    const key = `${cropSize[0]}×${cropSize[1]}:${outputShape ?? ''}:${numPrefixToken ?? ''}`;
    const cached = this.layouts.get(key);
    if (cached) return cached;
    const c = this.inputChannels ?? 3;
    const probe = await this.forward({ dims: [1, c, cropSize[0], cropSize[1]], data: new Float32Array(c * cropSize[0] * cropSize[1]) });
    const metaPrefix = this.metadata['s2.num_prefix_tokens'];
    let layout: Layout;
    try {
      layout = inferLayout(probe.dims, cropSize, {
        outputShape,
        numPrefixToken,
        metadataPrefix: metaPrefix !== undefined && /^\d+$/.test(metaPrefix) ? Number(metaPrefix) : undefined,
      });
    } catch (e) {
      throw new ModelError(`${this.file}: ${(e as Error).message}`);
    }
    this.layouts.set(key, layout);
    return layout;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The image input a compiled S² model names in its description (metadata s2.compiled, field `input`): with one
 * input per scale it has several image inputs, and the first scale's is the one to probe. Undefined otherwise.
 */
function declaredInput(metadata: Record<string, string>, inputs: IoInfo[]): string | undefined {
  const text = metadata['s2.compiled'];
  if (text === undefined) return undefined;
  try {
    const name = (JSON.parse(text) as { input?: unknown }).input;
    return typeof name === 'string' && inputs.some((i) => i.name === name) ? name : undefined;
  } catch {
    // An unreadable description is reported by whoever reads it (compiledInfo), in one line naming the key.
    return undefined;
  }
}

function pickInput(file: string, inputs: IoInfo[], wanted?: string): string {
  if (wanted !== undefined) {
    const found = inputs.find((i) => i.name === wanted);
    if (!found) throw new ModelError(`${file}: no input named '${wanted}' (inputs: ${inputs.map((i) => i.name).join(', ')})`);
    if (found.type !== 'float32' || found.dims.length !== 4) {
      throw new ModelError(`${file}: input '${wanted}' is ${found.type} [${found.dims.join(', ')}], expected a float32 B×C×H×W image`);
    }
    return wanted;
  }
  const images = inputs.filter((i) => i.type === 'float32' && i.dims.length === 4);
  if (images.length === 0) {
    throw new ModelError(`${file}: no float32 B×C×H×W image input (inputs: ${inputs.map((i) => `${i.name} ${i.type} [${i.dims.join(', ')}]`).join('; ')})`);
  }
  if (images.length > 1) throw new ModelError(`${file}: several image-like inputs (${images.map((i) => i.name).join(', ')}); choose one by name`);
  if (inputs.length > 1) {
    throw new ModelError(
      `${file}: the backbone needs inputs besides '${images[0].name}' (${inputs
        .filter((i) => i !== images[0])
        .map((i) => i.name)
        .join(', ')}); only image-only models are supported`,
    );
  }
  return images[0].name;
}

function pickOutput(file: string, outputs: IoInfo[], wanted?: string): string {
  if (wanted !== undefined) {
    if (!outputs.some((o) => o.name === wanted))
      throw new ModelError(`${file}: no output named '${wanted}' (outputs: ${outputs.map((o) => o.name).join(', ')})`);
    return wanted;
  }
  const feature = outputs.find((o) => o.type === 'float32' && (o.dims.length === 3 || o.dims.length === 4));
  if (!feature) {
    throw new ModelError(
      `${file}: no float32 rank-3 (tokens) or rank-4 (maps) output (outputs: ${outputs.map((o) => `${o.name} [${o.dims.join(', ')}]`).join('; ')})`,
    );
  }
  return feature.name;
}
