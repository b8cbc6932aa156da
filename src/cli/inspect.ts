// `s2-policy inspect`: a model's inputs, outputs, metadata and detected layout, and what S² would do with it.
import { pair } from '../config/size.js';
import { compiledResize, type CompiledInfo } from '../compile/compile.js';
import { inputsText } from './compile.js';
import { quantizationLine } from '../compile/quantization.js';
import { inspectModel, type IoDescription, type S2Description } from '../run/inspect.js';
import type { Command } from './command.js';
import { int, parseFlags, required, sizeList, str } from './args.js';
import { MODEL_FLAGS, S2_FLAGS, backboneOptions, s2OptionsFromFlags } from './model-flags.js';

const INSPECT_HELP = `usage: s2-policy inspect --model M.onnx [--scales 1,2 | --img-sizes 224,448 | 224x336,448x672]
         [--input-size N | HxW] [--batch B] [other S² flags as for features]`;

type ScaleLine = Pick<CompiledInfo, 'scales' | 'splitMode'>;

function scaleLines(p: ScaleLine): void {
  p.scales.forEach((s, i) => {
    const resized =
      s.splitSize[0] !== s.size[0] || s.splitSize[1] !== s.size[1]
        ? ` -> ${p.splitMode === 'pad' ? 'padded' : 'resized'} to ${s.splitSize[0]}×${s.splitSize[1]}`
        : '';
    console.log(`scale ${i}    ${s.size[0]}×${s.size[1]}${resized}: ${s.numSplit[0]}×${s.numSplit[1]} crops of ${s.cropSize[0]}×${s.cropSize[1]}`);
  });
}

function describeCompiled(c: CompiledInfo): void {
  console.log(`compiled   S² of ${c.backbone}: input ${inputsText(c)} -> ${c.output} [${c.outputDims.join(', ')}]`);
  if (compiledResize(c) === 'native') {
    console.log(
      `S² input   one image per scale (image.resize native), for base images of ${c.inputSize[0]}×${c.inputSize[1]}; each is only split (resized or padded to whole crops where the split size differs)`,
    );
  }
  console.log(`S² options ${JSON.stringify(c.options)}`);
  console.log(
    `S² layout  ${c.outputShape}, ${c.numPrefixToken} prefix tokens, max split size ${c.maxSplitSize}${c.splitMode ? `, split mode ${c.splitMode}` : ''}, pooled to scale ${c.resizeOutputToIdx}`,
  );
  scaleLines({ scales: c.scales, splitMode: c.splitMode });
  console.log(`backbone   inlined for ${c.backboneCalls} crop size${c.backboneCalls === 1 ? '' : 's'}, all crops of a size in one pass`);
}

function describeS2(s: S2Description): void {
  const { plan, batch } = s;
  const [inH, inW] = s.inputSize;
  for (const [crop, l] of s.layouts) {
    console.log(`layout     ${l.outputShape}, ${l.numPrefixToken} prefix tokens, ${l.channels} channels, grid ${l.grid[0]}×${l.grid[1]} per ${crop} crop`);
  }
  console.log(
    `S² input   ${batch}×${plan.channels}×${inH}×${inW}, max split size ${plan.maxSplitSize}${plan.splitMode ? `, split mode ${plan.splitMode}` : ''}`,
  );
  scaleLines({ scales: plan.scales, splitMode: plan.splitMode ?? null });
  const [gh, gw] = s.grid;
  const shape = s.outputShape === 'bnc' ? `${batch}×${plan.numPrefixToken + gh * gw}×${s.channels}` : `${batch}×${s.channels}×${gh}×${gw}`;
  console.log(`S² output  ${shape} (${s.outputShape}${s.outputShape === 'bnc' ? `, ${plan.numPrefixToken} prefix + ${gh}×${gw} grid` : ''})`);
  console.log(`backbone   ${s.crops} crops in ${s.calls} call${s.calls === 1 ? '' : 's'}`);
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: "a model's inputs, outputs, layout, and the S² plan for given scales",
  help: INSPECT_HELP,
  run: async (argv) => {
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
    const model = required(flags, 'model', 'inspect');
    const sizeText = str(flags, 'input-size');
    const r = await inspectModel({
      model,
      backbone: backboneOptions(flags),
      s2: s2OptionsFromFlags(flags),
      inputSize: sizeText === undefined ? undefined : pair(sizeList(sizeText, 'input-size')[0]),
      batch: int(flags, 'batch'),
    });
    const io = (x: IoDescription): string => `${x.name}  ${x.type} [${x.dims.join(', ')}]`;
    console.log(`model      ${model}`);
    for (const i of r.inputs) console.log(`input      ${io(i)}${i.name === r.inputName ? '   <- image' : ''}`);
    for (const o of r.outputs) console.log(`output     ${io(o)}${o.name === r.outputName ? '   <- features' : ''}`);
    console.log(`batch      ${r.fixedBatch === undefined ? 'dynamic' : `fixed ${r.fixedBatch}`}`);
    const fixed = r.fixedSize;
    console.log(`input size ${fixed ? `fixed ${fixed[0]}×${fixed[1]}` : `dynamic${r.nativeSize ? ` (metadata s2.image_size ${r.nativeSize})` : ''}`}`);
    for (const [k, v] of Object.entries(r.metadata)) console.log(`metadata   ${k} = ${v}`);
    if (r.compiled) {
      describeCompiled(r.compiled);
      if (r.quantization) console.log(`quantized  ${quantizationLine(r.quantization)}`);
      if (r.quantizationWarning) console.log(`warning    ${r.quantizationWarning}`);
    } else if (r.s2) describeS2(r.s2);
    else if (r.layout) {
      const { crop, layout: l } = r.layout;
      console.log(
        `layout     ${l.outputShape}, ${l.numPrefixToken} prefix tokens, ${l.channels} channels, grid ${l.grid[0]}×${l.grid[1]} per ${crop[0]}×${crop[1]} crop`,
      );
    } else console.log('layout     (pass --input-size or --img-sizes to probe a model without a fixed input size)');
    return 0;
  },
};
