// `s2-policy inspect`: a model's inputs, outputs, metadata and detected layout, and what S² would do with it.
import { UserError } from '../errors.js';
import { OnnxBackbone } from '../backbone/onnx-backbone.js';
import { resolveS2Options } from '../backbone/resolve.js';
import { countCalls } from '../s2/plan.js';
import { COMPILED_KEY, compiledInfo, type CompiledInfo } from '../compile/compile.js';
import { backboneOptions } from './features.js';
import { MODEL_FLAGS, S2_FLAGS, int, parseFlags, required, s2OptionsFromFlags, sizeList, str } from './args.js';
import { pair } from '../config/size.js';

export const INSPECT_HELP = `usage: s2-policy inspect --model M.onnx [--scales 1,2 | --img-sizes 224,448 | 224x336,448x672]
         [--input-size N | HxW] [--batch B] [other S² flags as for features]`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const flags = parseFlags('inspect', argv, {
    ...MODEL_FLAGS,
    ...S2_FLAGS,
    'input-size': { type: 'string' },
    batch: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(INSPECT_HELP);
    return 0;
  }
  const modelFile = required(flags, 'model', 'inspect');
  const backbone = await OnnxBackbone.load(modelFile, backboneOptions(flags));
  try {
    const io = (x: { name: string; type: string; dims: (number | string)[] }): string => `${x.name}  ${x.type} [${x.dims.join(', ')}]`;
    console.log(`model      ${modelFile}`);
    for (const i of backbone.inputs) console.log(`input      ${io(i)}${i.name === backbone.inputName ? '   <- image' : ''}`);
    for (const o of backbone.outputs) console.log(`output     ${io(o)}${o.name === backbone.outputName ? '   <- features' : ''}`);
    console.log(`batch      ${backbone.fixedBatch === undefined ? 'dynamic' : `fixed ${backbone.fixedBatch}`}`);
    const fixed = backbone.fixedSize;
    console.log(
      `input size ${fixed ? `fixed ${fixed[0]}×${fixed[1]}` : `dynamic${backbone.nativeSize ? ` (metadata s2.image_size ${backbone.nativeSize})` : ''}`}`,
    );
    const compiled = compiledInfo(backbone.metadata, modelFile);
    for (const [k, v] of Object.entries(backbone.metadata)) if (k !== COMPILED_KEY) console.log(`metadata   ${k} = ${v}`);
    if (compiled) {
      const given = Object.keys(S2_FLAGS).filter((k) => flags[k] !== undefined);
      if (given.length > 0) throw new UserError(`inspect: ${modelFile} is a compiled S² model (its S² options are built in); drop --${given[0]}`);
      describeCompiled(compiled);
      return 0;
    }

    const options = s2OptionsFromFlags(flags);
    const sizeText = str(flags, 'input-size');
    let inH: number | undefined;
    let inW: number | undefined;
    if (sizeText !== undefined) {
      [inH, inW] = pair(sizeList(sizeText, 'input-size')[0]);
    } else {
      inH = inW = backbone.nativeSize;
    }
    if (options.scales === undefined && options.imgSizes === undefined) {
      if (inH === undefined || inW === undefined) {
        console.log('layout     (pass --input-size or --img-sizes to probe a model without a fixed input size)');
        return 0;
      }
      const layout = await backbone.layoutFor([inH, inW]);
      console.log(
        `layout     ${layout.outputShape}, ${layout.numPrefixToken} prefix tokens, ${layout.channels} channels, grid ${layout.grid[0]}×${layout.grid[1]} per ${inH}×${inW} crop`,
      );
      return 0;
    }
    if (inH === undefined || inW === undefined) {
      const first = options.imgSizes?.[0];
      if (first === undefined) throw new UserError('inspect: the model has no fixed input size; pass --input-size');
      [inH, inW] = typeof first === 'number' ? [first, first] : [first[0], first[1]];
    }
    const batch = int(flags, 'batch') ?? 1;
    const { options: resolved, plan, layouts } = await resolveS2Options(backbone, options, [batch, backbone.inputChannels ?? 3, inH, inW]);
    for (const [crop, l] of layouts) {
      console.log(`layout     ${l.outputShape}, ${l.numPrefixToken} prefix tokens, ${l.channels} channels, grid ${l.grid[0]}×${l.grid[1]} per ${crop} crop`);
    }
    console.log(
      `S² input   ${batch}×${plan.channels}×${inH}×${inW}, max split size ${plan.maxSplitSize}${plan.splitMode ? `, split mode ${plan.splitMode}` : ''}`,
    );
    plan.scales.forEach((s, i) => {
      const resized =
        s.splitSize[0] !== s.size[0] || s.splitSize[1] !== s.size[1]
          ? ` -> ${plan.splitMode === 'pad' ? 'padded' : 'resized'} to ${s.splitSize[0]}×${s.splitSize[1]}`
          : '';
      console.log(`scale ${i}    ${s.size[0]}×${s.size[1]}${resized}: ${s.numSplit[0]}×${s.numSplit[1]} crops of ${s.cropSize[0]}×${s.cropSize[1]}`);
    });
    const { crops, calls } = countCalls(plan, backbone.fixedBatch);
    // The output size comes from the per-crop grids: merge, optional pad crop, then the chosen scale's grid.
    const grids = plan.scales.map((s) => {
      const l = layouts.get(`${s.cropSize[0]}×${s.cropSize[1]}`);
      if (!l) throw new Error('layout missing for a planned crop size');
      let gh = l.grid[0] * s.numSplit[0];
      let gw = l.grid[1] * s.numSplit[1];
      if (plan.splitMode === 'pad') {
        gh = Math.ceil((s.size[0] / s.splitSize[0]) * gh);
        gw = Math.ceil((s.size[1] / s.splitSize[1]) * gw);
      }
      return { gh, gw, channels: l.channels };
    });
    const g = grids[plan.resizeOutputToIdx];
    const ch = grids.reduce((n, x) => n + x.channels, 0);
    const shape = resolved.outputShape === 'bnc' ? `${batch}×${plan.numPrefixToken + g.gh * g.gw}×${ch}` : `${batch}×${ch}×${g.gh}×${g.gw}`;
    console.log(
      `S² output  ${shape} (${resolved.outputShape}${resolved.outputShape === 'bnc' ? `, ${plan.numPrefixToken} prefix + ${g.gh}×${g.gw} grid` : ''})`,
    );
    console.log(`backbone   ${crops} crops in ${calls} call${calls === 1 ? '' : 's'}`);
    return 0;
  } finally {
    await backbone.release();
  }
}

function describeCompiled(c: CompiledInfo): void {
  console.log(
    `compiled   S² of ${c.backbone}: input ${c.input} [batch, ${c.channels}, ${c.inputSize[0]}, ${c.inputSize[1]}] -> ${c.output} [${c.outputDims.join(', ')}]`,
  );
  console.log(`S² options ${JSON.stringify(c.options)}`);
  console.log(
    `S² layout  ${c.outputShape}, ${c.numPrefixToken} prefix tokens, max split size ${c.maxSplitSize}${c.splitMode ? `, split mode ${c.splitMode}` : ''}, pooled to scale ${c.resizeOutputToIdx}`,
  );
  c.scales.forEach((s, i) => {
    const resized =
      s.splitSize[0] !== s.size[0] || s.splitSize[1] !== s.size[1]
        ? ` -> ${c.splitMode === 'pad' ? 'padded' : 'resized'} to ${s.splitSize[0]}×${s.splitSize[1]}`
        : '';
    console.log(`scale ${i}    ${s.size[0]}×${s.size[1]}${resized}: ${s.numSplit[0]}×${s.numSplit[1]} crops of ${s.cropSize[0]}×${s.cropSize[1]}`);
  });
  console.log(`backbone   inlined for ${c.backboneCalls} crop size${c.backboneCalls === 1 ? '' : 's'}, all crops of a size in one pass`);
}
