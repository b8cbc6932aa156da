// The s2.quantization metadata that scripts/quantize_int8.py writes into an INT8 compiled S² model: what was
// quantized, which products were kept in float32, the accuracy gate and the figures it measured — read, checked and
// told in one line wherever a compiled model is loaded.
import { z } from 'zod';
import { ModelError } from '../backbone/onnx-backbone.js';

/** Metadata key of the INT8 description (JSON). */
export const QUANTIZATION_KEY = 's2.quantization';

const unit = z.number().min(-1).max(1);
const count = z.number().int().nonnegative();

const schema = z.object({
  /** static: calibrated QDQ; dynamic: activation ranges taken per run. */
  mode: z.enum(['static', 'dynamic']),
  method: z.string(),
  calibration: z.object({ method: z.string(), frames: count }),
  products: z.string(),
  quantized: count,
  excluded: z.array(z.string()),
  search: z.string(),
  gate: z.object({ metric: z.string(), percentile: z.number().min(0).max(100), min_cosine: unit }),
  measured: z.object({
    frames: count,
    tokens: count,
    mean_cosine: unit,
    p_cosine: unit,
    rel_error: z.number().nonnegative(),
    source: z.string().optional(),
  }),
});

export type QuantizationInfo = z.infer<typeof schema>;

/**
 * The INT8 description of a model's metadata, or undefined for a model without one. A description this version
 * cannot read (not JSON, a field missing or out of range, one written before the gate existed) is a one-line error
 * naming the file, the key and the field.
 */
export function quantizationInfo(metadata: Record<string, string>, file: string): QuantizationInfo | undefined {
  const text = metadata[QUANTIZATION_KEY];
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelError(`${file}: metadata ${QUANTIZATION_KEY} is not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.join('.') || '(the value)';
    throw new ModelError(
      `${file}: metadata ${QUANTIZATION_KEY}: ${field}: ${issue.message.toLowerCase()} (re-run scripts/quantize_int8.py to record the accuracy gate)`,
    );
  }
  const q = r.data;
  if (q.quantized === 0) throw new ModelError(`${file}: metadata ${QUANTIZATION_KEY}: quantized: 0 products (an INT8 model quantizes at least one)`);
  if (q.measured.p_cosine < q.gate.min_cosine) {
    throw new ModelError(
      `${file}: metadata ${QUANTIZATION_KEY}: measured.p_cosine ${q.measured.p_cosine} is below its own gate ${q.gate.min_cosine} (scripts/quantize_int8.py never writes such a model)`,
    );
  }
  return q;
}

const fixed4 = (v: number): string => v.toFixed(4);

/** One line for logs: what is INT8, what stayed float32, and the gate with the measured figures. */
export function quantizationLine(q: QuantizationInfo): string {
  const total = q.quantized + q.excluded.length;
  const kept = q.excluded.length === 0 ? 'none kept in float32' : `${q.excluded.length} kept in float32: ${q.excluded.join(', ')}`;
  const m = q.measured;
  const p = `p${q.gate.percentile}`;
  return (
    `INT8 (${q.mode}) ${q.quantized} of ${total} ${q.products === 'weights' ? 'weight ' : ''}products (${kept}); ` +
    `token cosine to fp32 ${p} ${fixed4(m.p_cosine)} (gate ≥ ${q.gate.min_cosine}), mean ${fixed4(m.mean_cosine)}, rel. error ${fixed4(m.rel_error)} ` +
    `on ${m.frames} held-out frames; ${q.mode === 'static' ? `${q.calibration.method} calibration on ${q.calibration.frames} frames` : 'activation ranges per run'}`
  );
}
