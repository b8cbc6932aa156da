// Mocha's spec reporter plus one closing line "N passed, N failed[, N skipped]" that CI reads.
'use strict';
const Mocha = require('mocha');

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithCounts extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const skipped = s.pending > 0 ? `, ${s.pending} skipped` : '';
      // Printed after the spec summary (which is also written on run end).
      process.on('exit', () => console.log(`${s.passes} passed, ${s.failures} failed${skipped}`));
    });
  }
}

module.exports = SpecWithCounts;
