// Renders RELIABILITY.md from the figures the fault and fuzz tests record (see
// scripts/reliability). Prints Markdown on stdout; every number comes from a JSON file.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'target/tmp/reliability';
const runs = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    // Seeds are 64-bit: kept as text, since JSON numbers lose digits past 2^53 here.
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8').replace(/"seed": (\d+)/g, '"seed": "$1"')))
    .map((r) => [r.test, r]),
);
const n = (v) => (v === undefined ? 'not run' : Number(v).toLocaleString('en-US'));
const f = (test) => runs[test]?.figures ?? {};
const when = Object.values(runs).map((r) => r.recorded_at).sort().pop() ?? 'never';

const crash = f('crash_loop');
const disk = f('disk_full');
const fsync = f('failed_fsync');
const slow = f('slow_senders');
const bad = f('malformed_bodies');
const parsers = f('fuzz_parsers');
const ingest = f('fuzz_ingest');
const lib = f('libfuzzer_parse');
const statuses = Object.entries(ingest.statuses ?? {}).map(([s, c]) => `${n(c)} × ${s}`).join(', ');
const outcomes = Object.entries(parsers.outcomes ?? {}).map(([o, c]) => `${n(c)} ${o}`).join(', ');

const lines = [
  '# Reliability',
  '',
  'Figures from the last run of the fault and hostile-input tests, written by `bash scripts/reliability`',
  `(do not edit by hand). Last recorded: ${when}. CI runs the same tests on every change, with the`,
  'default sizes below; set the environment variables named in each row for longer runs.',
  '',
  '## Nothing acknowledged is lost',
  '',
  '| test | figures |',
  '|---|---|',
  `| Crash loop: \`rollcall serve\` killed with SIGKILL at random moments while 16 senders post TagMango and GoTo deliveries (GoTo retries included); after every restart (which projects what the kill left pending) each acknowledged delivery is checked byte for byte, bodies are stored once (retries are duplicates), and the projection equals a clean \`reindex\` (\`tests/restart.rs\`, \`ROLLCALL_CRASH_ROUNDS\`) | ${n(crash.crashes)} crashes survived; ${n(crash.deliveries_sent)} deliveries sent, ${n(crash.deliveries_acknowledged)} acknowledged, ${n(crash.acknowledged_found)} of them found; ${n(crash.deliveries_stored)} stored (the rest were committed but the kill came before the answer); ${n(crash.pending_at_crash_projected_on_restart)} acknowledged but not yet projected at a kill, all projected by the restart; seed ${crash.seed ?? '-'} |`,
  `| Disk full: a 16 MiB tmpfs filled up under the data directory; ingest answers 503 with Retry-After, keeps nothing half-written, and takes deliveries again by itself once space is freed (\`tests/faults.rs\`) | ${n(disk.refused_with_503)} deliveries refused with 503; ${n(disk.acknowledged)} acknowledged, ${n(disk.acknowledged_found)} found; ${n(disk.stored)} stored; integrity check ok |`,
  `| Failing disk: ext4 on a loop device whose backing store runs out, so the device fails writes under the filesystem; once an fsync has failed nothing more is acknowledged (503) until a restart, even after the device works again, and after a restart that reads from the device (page cache dropped) every acknowledged delivery is there (\`tests/faults.rs\`) | ${n(fsync.acknowledged)} acknowledged, ${n(fsync.acknowledged_found)} found after the restart; ${n(fsync.refused_after_the_disk_came_back)} refused after the device came back; integrity check ok |`,
  '',
  '## Hostile input',
  '',
  '| test | figures |',
  '|---|---|',
  `| Malformed bodies (truncated, empty, XML, 3,000-deep nesting, invalid UTF-8, 1 MiB fields ...) kept, answered 200, quarantined with a reason (\`tests/robustness.rs\`) | ${n(bad.bad_inputs_tried)} bad inputs tried, ${n(bad.kept_and_quarantined)} kept and quarantined |`,
  `| Parser fuzzing: structure-aware mutants of all ${n(parsers.fixtures)} fixtures through every parser (\`tests/fuzz.rs\`, \`ROLLCALL_FUZZ_ITERATIONS\`) | ${n(parsers.executions)} executions, ${n(parsers.crashes)} crashes; ${outcomes || '-'} |`,
  `| Ingest fuzzing: random methods, paths, headers and bodies through the real listener; no 5xx, every 200 kept byte for byte (\`tests/fuzz.rs\`, \`ROLLCALL_FUZZ_REQUESTS\`) | ${n(ingest.requests)} requests: ${statuses || '-'}; ${n(ingest.kept)} kept (${n(ingest.quarantined)} quarantined) |`,
  `| Coverage-guided fuzzing with cargo-fuzz (libFuzzer) of the parsers (\`fuzz/\`, \`bash scripts/reliability --libfuzzer SECONDS\`) | ${lib.executions === undefined ? 'not run in this report' : `${n(lib.executions)} executions in ${n(lib.seconds)} s, ${n(lib.coverage_edges)} coverage edges, ${n(lib.crashes)} crashes`} |`,
  `| Slow and silent senders: connections that dribble header bytes or send nothing, held open while deliveries arrive (\`tests/hostile.rs\`) | ${n(slow.slow_connections)} slow and ${n(slow.silent_connections)} silent connections, ${n(slow.cut_off)} cut off at the header deadline; ${n(slow.deliveries_meanwhile_acknowledged)} deliveries acknowledged meanwhile |`,
  '',
];
process.stdout.write(lines.join('\n'));
