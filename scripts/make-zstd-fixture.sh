#!/usr/bin/env bash
# Regenerates test/fixtures/streamed_0.mcap.zstd (see test/fixtures/README.md). Needs `npm run build` and zstd.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
node --input-type=module -e "
import { McapRosWriter } from './dist/src/bag/writer.js';
const w = await McapRosWriter.create('$tmp/counter.mcap', { rosDistro: 'jazzy' });
const ch = await w.addChannel('/counter', 'std_msgs/msg/Float64MultiArray');
for (let i = 0; i < 800; i++) {
  await w.write(ch, { layout: { dim: [], data_offset: 0 }, data: Array.from({ length: 16 }, (_, k) => i * 16 + k) }, 1_700_000_000_000_000_000n + BigInt(i) * 10_000_000n);
}
await w.close();
"
zstd -q -f -c < "$tmp/counter.mcap" > test/fixtures/streamed_0.mcap.zstd
rm -rf "$tmp"
