// The ONNX module (src/onnx): the builder's models as onnxruntime reads them, encoding against the protobuf
// library's own encoder, round trips of project and compiled models, metadata, external data, and bad files.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { equals, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import ort from 'onnxruntime-node';
import { compileS2 } from '../src/compile/compile.js';
import { UserError } from '../src/errors.js';
import { OnnxGraph } from '../src/onnx/builder.js';
import { readModelFile } from '../src/onnx/file.js';
import {
  AttributeType,
  DataLocation,
  DataType,
  decodeModel,
  encodeModel,
  metadataOf,
  metadataProps,
  newModel,
  pruneTo,
  type GraphProto,
  type ModelProto,
} from '../src/onnx/model.js';
import { toExternalData } from './helpers/onnx.js';
import { cli, modelPath, tempDir } from './helpers/util.js';

const graphOf = (m: ModelProto): GraphProto => m.graph as GraphProto;
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const bytesOf = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Y = Transpose(0.5 · X · Wᵀ + C), with float, int, int-list and float-list attributes. */
function gemmGraph(): { graph: OnnxGraph; w: Float32Array } {
  const g = new OnnxGraph('gemm_test');
  const x = g.input('x', ['batch', 3]);
  const w = Float32Array.of(1, 2, 3, -1, 0.5, 4);
  const c = g.op('Constant', [], { value_floats: { floats: [0.25, -0.75] } });
  const y = g.op('Gemm', [x, g.weight('w', [2, 3], w), c], { alpha: 0.5, transB: 1 });
  g.op('Transpose', [y], { perm: [1, 0] }, 'y');
  g.output('y', [2, 'batch']);
  g.metadata['s2.kind'] = 'test';
  g.metadata['s2.note'] = 'ünïcode ✓';
  return { graph: g, w };
}

describe('ONNX module', () => {
  const dir = tempDir('s2-onnx-');

  describe('builder', () => {
    it('writes a model onnxruntime runs with the attributes, weights and shapes given', async () => {
      const { graph, w } = gemmGraph();
      const x = Float32Array.of(1, 0, 2, -1, 3, 0.5);
      const out = (await run(graph.serialize(), { x: new ort.Tensor('float32', x, [2, 3]) })).y;
      assert.deepEqual(out.dims, [2, 2]);
      const expected: number[] = [];
      for (let j = 0; j < 2; j++) {
        for (let b = 0; b < 2; b++) {
          let s = 0;
          for (let k = 0; k < 3; k++) s += x[b * 3 + k] * w[j * 3 + k];
          expected.push(0.5 * s + [0.25, -0.75][j]);
        }
      }
      assert.deepEqual(Array.from(out.data as Float32Array), expected);
    });

    it('describes every field as the ONNX schema reads it', () => {
      const { graph, w } = gemmGraph();
      graph.ints([4, -5], [2]);
      graph.op('Resize', ['y'], { mode: 'nearest' });
      const m = decodeModel(graph.serialize(), 'gemm.onnx');
      assert.equal(m.irVersion, 8n);
      assert.equal(m.producerName, 's2_policy');
      assert.deepEqual(
        m.opsetImport.map((o) => [o.domain, o.version]),
        [['', 17n]],
      );
      const g = graphOf(m);
      assert.equal(g.name, 'gemm_test');
      assert.deepEqual(
        g.node.map((n) => [n.opType, n.name, n.output.join()]),
        [
          ['Constant', 'constant_0', 'constant_0'],
          ['Gemm', 'gemm_1', 'gemm_1'],
          ['Transpose', 'y', 'y'],
          ['Resize', 'resize_3', 'resize_3'],
        ],
      );
      const attr = (op: string, name: string) => g.node.find((n) => n.opType === op)?.attribute.find((a) => a.name === name);
      assert.equal(attr('Gemm', 'alpha')?.type, AttributeType.FLOAT);
      assert.equal(attr('Gemm', 'alpha')?.f, 0.5);
      assert.equal(attr('Gemm', 'transB')?.type, AttributeType.INT);
      assert.equal(attr('Gemm', 'transB')?.i, 1n);
      assert.deepEqual(attr('Transpose', 'perm')?.ints, [1n, 0n]);
      assert.equal(attr('Transpose', 'perm')?.type, AttributeType.INTS);
      assert.deepEqual(attr('Constant', 'value_floats')?.floats, [0.25, -0.75]);
      assert.equal(attr('Constant', 'value_floats')?.type, AttributeType.FLOATS);
      assert.equal(new TextDecoder().decode(attr('Resize', 'mode')?.s), 'nearest');
      assert.equal(attr('Resize', 'mode')?.type, AttributeType.STRING);
      const [wt, ints] = g.initializer;
      assert.deepEqual([wt.name, wt.dims, wt.dataType], ['w', [2n, 3n], DataType.FLOAT]);
      assert.deepEqual(wt.rawData, bytesOf(w));
      assert.deepEqual([ints.dims, ints.dataType], [[2n], DataType.INT64]);
      assert.deepEqual(Array.from(new BigInt64Array(ints.rawData.slice().buffer)), [4n, -5n]);
      const dims = g.input[0].type?.value.case === 'tensorType' ? g.input[0].type.value.value.shape?.dim.map((d) => d.value.value) : [];
      assert.deepEqual(dims, ['batch', 3n]);
      assert.deepEqual(metadataOf(m), { 's2.kind': 'test', 's2.note': 'ünïcode ✓' });
    });
  });

  describe('encoding', () => {
    it("gives the protobuf library's own encoding, and a project model back byte for byte", () => {
      const bytes = readFileSync(modelPath('vit-tiny'));
      const m = decodeModel(bytes, 'vit-tiny.onnx');
      const out = encodeModel(m);
      assert.deepEqual(out, toBinary(ModelProtoSchema, m));
      assert.deepEqual(Buffer.from(out), bytes);
      // Initializer data are views of the file's bytes, not copies.
      assert.equal(graphOf(m).initializer[0].rawData.buffer, bytes.buffer);
    });

    it('keeps the fields it does not splice: unknown fields, float_data, doc strings, value_info, a three-byte length', () => {
      const m = decodeModel(readFileSync(modelPath('convnet-tiny')), 'convnet-tiny.onnx');
      const g = graphOf(m);
      g.initializer[0].floatData = [1.5, -2];
      g.initializer[0].docString = 'after raw_data';
      g.initializer[1].rawData = new Uint8Array(20000).fill(7); // a three-byte length
      g.valueInfo = [g.output[0]];
      m.docString = 'between the model fields';
      // Field 99 with a varint: kept as an unknown field and written back.
      const withUnknown = Buffer.concat([encodeModel(m), Buffer.from([0x98, 0x06, 0x2a])]);
      const back = decodeModel(withUnknown, 'unknown.onnx');
      assert.equal(back.$unknown?.length, 1);
      const out = encodeModel(back);
      assert.deepEqual(out, toBinary(ModelProtoSchema, back));
      assert.deepEqual(Buffer.from(out), withUnknown);
      assert.ok(equals(ModelProtoSchema, decodeModel(out, 'x'), back));
      assert.deepEqual(graphOf(back).initializer[0].floatData, [1.5, -2]);
    });

    it('round-trips a compiled model, whose backbone copies are renamed and pruned', async () => {
      const c = await compileS2(modelPath('vit-tiny'), { scales: [1, 2] }, [32, 32]);
      const m = decodeModel(c.bytes, 'compiled');
      assert.deepEqual(encodeModel(m), c.bytes);
      const g = graphOf(m);
      const backbone = graphOf(readModelFile(modelPath('vit-tiny')).model);
      const copies = g.node.filter((n) => n.name.startsWith('backbone@32x32/'));
      // vit-tiny's second (pooled) output is pruned: its nodes are not copied.
      assert.equal(copies.length, pruneTo(backbone.node, 'features').length);
      assert.ok(copies.length < backbone.node.length);
      const weights = g.initializer.filter((i) => i.name.startsWith('backbone/'));
      const source = new Map(backbone.initializer.map((i) => [`backbone/${i.name}`, i.rawData]));
      assert.ok(weights.length > 0);
      for (const w of weights) assert.deepEqual(Buffer.from(w.rawData), Buffer.from(source.get(w.name) ?? []), w.name);
    });
  });

  describe('metadata', () => {
    it('reads entries appended after the model, the last of a repeated key winning', () => {
      const own = metadataOf(readModelFile(modelPath('vit-tiny')).model);
      assert.equal(own['s2.num_prefix_tokens'], '1');
      const file = join(dir, 'meta.onnx');
      const appended = encodeModel(newModel({ metadataProps: metadataProps({ 's2.num_prefix_tokens': '0', 's2.kind': 'vit' }) }));
      const again = encodeModel(newModel({ metadataProps: metadataProps({ 's2.kind': 'convnet' }) }));
      writeFileSync(file, Buffer.concat([readFileSync(modelPath('vit-tiny')), appended, again]));
      assert.deepEqual(metadataOf(readModelFile(file).model), { ...own, 's2.num_prefix_tokens': '0', 's2.kind': 'convnet' });
    });
  });

  describe('external data', () => {
    it('inlines every initializer as the same model with its weights inside, leaving the files as they were', () => {
      const file = join(tempDir('s2-onnx-ext-'), 'vit.onnx');
      const original = readFileSync(modelPath('vit-tiny'));
      const moved = toExternalData(original, file);
      assert.equal(moved, graphOf(decodeModel(original, 'vit-tiny')).initializer.length);
      const before = [sha(file), sha(`${file}.data`)];
      const read = readModelFile(file);
      assert.equal(read.inlined, moved);
      for (const t of graphOf(read.model).initializer) {
        assert.equal(t.dataLocation, DataLocation.DEFAULT);
        assert.deepEqual(t.externalData, []);
      }
      assert.deepEqual(Buffer.from(read.bytes()), original);
      assert.deepEqual([sha(file), sha(`${file}.data`)], before);
      // A model without external data is handed over as the file's own bytes.
      const plain = readModelFile(modelPath('vit-tiny'));
      assert.equal(plain.inlined, 0);
      assert.deepEqual(Buffer.from(plain.bytes()), original);
    });

    it("inlines a Constant node's tensor, and onnxruntime computes with it", async () => {
      const file = join(tempDir('s2-onnx-ext-'), 'const.onnx');
      const value = Float32Array.of(0.5, -1.25, 3);
      writeFileSync(`${file}.bin`, Buffer.concat([Buffer.alloc(8, 9), bytesOf(value)]));
      const model = newModel({
        irVersion: 8n,
        opsetImport: [{ domain: '', version: 17n }],
        graph: {
          name: 'const',
          node: [
            {
              opType: 'Constant',
              output: ['c'],
              attribute: [
                {
                  name: 'value',
                  type: AttributeType.TENSOR,
                  t: {
                    dims: [3n],
                    dataType: DataType.FLOAT,
                    dataLocation: DataLocation.EXTERNAL,
                    externalData: metadataProps({ location: 'const.onnx.bin', offset: '8', length: '12' }),
                  },
                },
              ],
            },
            { opType: 'Add', input: ['x', 'c'], output: ['y'] },
          ],
          input: [
            {
              name: 'x',
              type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimValue', value: 3n } }] } } } },
            },
          ],
          output: [
            {
              name: 'y',
              type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimValue', value: 3n } }] } } } },
            },
          ],
        },
      });
      writeFileSync(file, encodeModel(model));
      const read = readModelFile(file);
      assert.equal(read.inlined, 1);
      const y = (await run(read.bytes(), { x: new ort.Tensor('float32', Float32Array.of(1, 1, 1), [3]) })).y;
      assert.deepEqual(Array.from(y.data as Float32Array), [1.5, -0.25, 4]);
    });

    it('refuses locations outside the model folder, missing files and ranges past the end, naming the tensor', () => {
      const base = join(tempDir('s2-onnx-ext-'), 'vit.onnx');
      toExternalData(readFileSync(modelPath('vit-tiny')), base);
      const m = decodeModel(readFileSync(base), 'vit.onnx');
      const first = graphOf(m).initializer[0];
      const variant = (name: string, entries: Record<string, string>): string => {
        first.externalData = metadataProps(entries);
        const file = join(tempDir('s2-onnx-ext-'), name);
        writeFileSync(file, encodeModel(m));
        writeFileSync(`${file}.data`, readFileSync(`${base}.data`));
        return file;
      };
      const refuses = (file: string, pattern: RegExp) =>
        assert.throws(
          () => readModelFile(file),
          (e: Error) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'),
        );
      const name = first.name.replace(/[.]/g, '\\.');
      refuses(
        variant('up.onnx', { location: '../vit.onnx.data' }),
        new RegExp(`up\\.onnx: initializer '${name}' has external data location '\\.\\./vit\\.onnx\\.data'; expected a file next to the model`),
      );
      refuses(variant('abs.onnx', { location: '/etc/passwd' }), /abs\.onnx: .* expected a file next to the model$/);
      refuses(
        variant('gone.onnx', { location: 'gone.bin' }),
        new RegExp(`gone\\.onnx: external data file .*gone\\.bin of initializer '${name}' does not exist$`),
      );
      refuses(
        variant('long.onnx', { location: 'long.onnx.data', offset: '4', length: '99999999' }),
        /long\.onnx: initializer .* reads bytes 4…100000003 of long\.onnx\.data, which has \d+$/,
      );
      refuses(variant('nan.onnx', { location: 'nan.onnx.data', offset: 'x' }), /nan\.onnx: initializer .* reads bytes NaN/);
    });
  });

  describe('files that are not ONNX models', () => {
    const cases: [string, () => Uint8Array, RegExp][] = [
      [
        'truncated.onnx',
        () => readFileSync(modelPath('vit-tiny')).subarray(0, 30000),
        /truncated\.onnx: not an ONNX model \(protobuf parsing failed: [^\n]+\)$/,
      ],
      ['text.onnx', () => Buffer.from('this is not a model\n'), /text\.onnx: not an ONNX model \(protobuf parsing failed: [^\n]+\)$/],
      ['empty.onnx', () => new Uint8Array(0), /empty\.onnx: empty file \(0 bytes\), not an ONNX model$/],
      ['nograph.onnx', () => encodeModel(newModel({ metadataProps: metadataProps({ a: 'b' }) })), /nograph\.onnx: not an ONNX model \(no graph\)$/],
    ];
    for (const [name, bytes, pattern] of cases) {
      it(`${name}: one line naming the file, from the module and from the command line`, () => {
        const file = join(dir, name);
        writeFileSync(file, bytes());
        assert.throws(
          () => readModelFile(file),
          (e: Error) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'),
        );
        for (const args of [
          ['inspect', '--model', file],
          ['compile', '--model', file, '--scales', '1,2', '--input-size', '32', '--out', join(dir, 'c.onnx')],
        ]) {
          const r = cli(args);
          assert.equal(r.status, 2, r.stderr);
          assert.equal(r.stderr.split('\n').length, 2, r.stderr);
          assert.match(r.stderr.trim(), new RegExp(`^s2-policy: \\S*${pattern.source}`));
        }
      });
    }
  });
});
