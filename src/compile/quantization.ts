// The s2.quantization metadata that scripts/quantize_int8.py writes into an INT8 compiled S² model: what was
// quantized, which products were kept in float32, the accuracy gate and the figures it measured — read, checked and
// told in one line wherever a compiled model is loaded (with a warning line when the record does not vouch for it).
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
  // Optional: a record written before the gate existed still describes a runnable model (told with a warning).
  gate: z.object({ metric: z.string(), percentile: z.number().min(0).max(100), min_cosine: unit }).optional(),
  measured: z
    .object({
      frames: count,
      tokens: count,
      mean_cosine: unit,
      p_cosine: unit,
      rel_error: z.number().nonnegative(),
      source: z.string().optional(),
    })
    .optional(),
});

export type QuantizationInfo = z.infer<typeof schema>;

/**
 * The INT8 description of a model's metadata, or undefined for a model without one. A description this version
 * cannot read (not JSON, a field missing, of the wrong type or out of range) is a one-line error naming the file,
 * the key and the field. One without the gate's figures, or whose figures miss its own gate, is read: such a model
 * runs, and `quantizationWarning` says why its accuracy is not vouched for.
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
  return q;
}

/**
 * Why an INT8 record does not vouch for its model's accuracy, in one line, or undefined when it does: no gate or no
 * measured figures (a record written before the gate existed), or figures below its own gate (scripts/quantize_int8.py
 * never writes such a model; another tool or a hand edit did). Such a model still runs: loading it is the user's
 * choice, and the line tells them what it rests on.
 */
export function quantizationWarning(q: QuantizationInfo, file: string): string | undefined {
  const where = `${file}: metadata ${QUANTIZATION_KEY}`;
  if (!q.gate || !q.measured) {
    return `${where} has no ${q.gate ? 'measured figures' : 'accuracy gate'}: this INT8 model's features were never compared with fp32 (re-run scripts/quantize_int8.py to measure them)`;
  }
  if (q.measured.p_cosine < q.gate.min_cosine) {
    return `${where}: measured.p_cosine ${q.measured.p_cosine} is below its own gate ${q.gate.min_cosine}: this INT8 model's features differ from fp32 more than the gate allows (scripts/quantize_int8.py never writes such a model)`;
  }
  return undefined;
}

const fixed4 = (v: number): string => v.toFixed(4);

/** One line for logs: what is INT8, what stayed float32, and the gate with the measured figures. */
export function quantizationLine(q: QuantizationInfo): string {
  const total = q.quantized + q.excluded.length;
  const kept = q.excluded.length === 0 ? 'none kept in float32' : `${q.excluded.length} kept in float32: ${q.excluded.join(', ')}`;
  const m = q.measured;
  const g = q.gate;
  const figures =
    m && g
      ? `token cosine to fp32 p${g.percentile} ${fixed4(m.p_cosine)} (gate ≥ ${g.min_cosine}), mean ${fixed4(m.mean_cosine)}, rel. error ${fixed4(m.rel_error)} on ${m.frames} held-out frames`
      : m
        ? `token cosine to fp32 mean ${fixed4(m.mean_cosine)}, p ${fixed4(m.p_cosine)}, rel. error ${fixed4(m.rel_error)} on ${m.frames} held-out frames (no gate recorded)`
        : `no accuracy gate or figures recorded${g ? ` (gate p${g.percentile} ≥ ${g.min_cosine}, never measured)` : ''}`;
  return (
    `INT8 (${q.mode}) ${q.quantized} of ${total} ${q.products === 'weights' ? 'weight ' : ''}products (${kept}); ${figures}; ` +
    `${q.mode === 'static' ? `${q.calibration.method} calibration on ${q.calibration.frames} frames` : 'activation ranges per run'}`
  );
}
