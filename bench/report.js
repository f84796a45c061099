'use strict';

// The current-figures page, bench/RESULTS.md, and its chart, bench/ratios.svg,
// written from bench/results/node<major>.json: one file per Node the servers
// ran on, each saved by the latest complete `npm run bench` on that Node
// (saveRun). The page is generated whole; what the figures mean, how they are
// taken and every experiment behind them are in bench/JOURNAL.md.
//
//   node bench/report.js      rewrite RESULTS.md and ratios.svg from bench/results/

const fs = require('fs');
const path = require('path');
const { renderSvg } = require('./plot');

const RESULTS_DIR = path.join(__dirname, 'results');
const PAGE = path.join(__dirname, 'RESULTS.md');
const CHART = path.join(__dirname, 'ratios.svg');
const JOURNAL = path.join(__dirname, 'JOURNAL.md');

// The blocks that bench/handover.js and bench/overload.js write into
// JOURNAL.md (between their markers), shown again on the results page: what
// the listening socket's owner can do is a figure too, beside the speed.
const BLOCKS = [
  ['Restarts under load (hand-over against node:net and reusePort)', 'restarts-under-load-issue-30',
   /<!-- bench\/handover\.js: start -->\n([\s\S]*?)<!-- bench\/handover\.js: end -->/],
  ['Overload (per-client limits and load-aware accepting against maxConnections)',
   'overload-issue-31-per-client-limits-and-load-aware-accepting',
   /<!-- overload:begin[^\n]*\n([\s\S]*?)<!-- overload:end -->/],
  ['Load-aware accepting: the default, measured', 'load-aware-accepting-the-default-measured-issue-31',
   /<!-- overload-sweep:begin[^\n]*\n([\s\S]*?)<!-- overload-sweep:end -->/],
];

function journalBlocks() {
  let journal;
  try {
    journal = fs.readFileSync(JOURNAL, 'utf8');
  } catch {
    return [];
  }
  const parts = [];
  for (const [title, anchor, pattern] of BLOCKS) {
    const found = pattern.exec(journal);
    if (!found) continue;
    parts.push('', `## ${title}`, '', found[1].trim(), '',
               `How to read it, and how it was run: [JOURNAL.md](JOURNAL.md#${anchor}).`);
  }
  return parts;
}

// Where each regime is described on the page.
const REGIMES = {
  unpinned: 'A core to spare (unpinned: no CPU affinity)',
  pinned: 'No core to spare (pinned: the server on one CPU, the load generator on the other)',
};
// The other runtimes, shown with their own figures beside every Node's.
const PEERS = ['bun', 'deno'];

const major = (version) => Number(String(version).replace(/^v/, '').split('.')[0]);

// Keeps what the page needs of one complete run: the machine, the
// configuration, and per regime each figure's medians, ratios and spread.
function saveRun(results, summaries, { variants, labels, primary }) {
  const m = results.machine;
  const keep = (r) => ({
    key: r.key, row: r.row, label: r.label, unit: r.unit, dir: r.dir, target: r.target,
    med: r.med, ratios: r.ratios, paired: r.paired, spread: r.spread, foreign: r.foreign, n: r.n,
  });
  const saved = {
    machine: m,
    config: { quick: results.config.quick, rounds: results.config.rounds },
    variants, labels, primary,
    summaries: Object.fromEntries(summaries.map(([regime, rows]) => [regime, rows.map(keep)])),
    check: results.check,
  };
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `node${major(m.node)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(saved, null, 1)}\n`);
  return file;
}

function loadRuns() {
  if (!fs.existsSync(RESULTS_DIR)) return [];
  return fs.readdirSync(RESULTS_DIR).filter((f) => /^node\d+\.json$/.test(f))
    .map((f) => JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, f), 'utf8')))
    .sort((a, b) => major(a.machine.node) - major(b.machine.node));
}

function fmt(x, unit) {
  if (x == null) return '—';
  if (unit === 'conn/s' || unit === 'req/s') return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
const fr = (x) => (x == null ? '—' : x.toFixed(2));
const meets = (r, ratio) => (ratio == null || r.target == null ? null :
  r.dir === 'higher' ? ratio >= r.target : ratio <= r.target);

// One regime: a line per figure; Bun's and Deno's own medians (from the
// newest run that has them), then per Node node:net's median and rust-net's
// (its automatic placement) with its ratio to node:net; ✗ where that ratio
// misses the figure's target.
function regimeTable(runs, regime) {
  const withRegime = runs.filter((run) => run.summaries[regime]);
  const keys = [];
  for (const run of withRegime) for (const r of run.summaries[regime]) if (!keys.includes(r.key)) keys.push(r.key);
  const peerRun = (p) => [...withRegime].reverse().find((run) => run.summaries[regime].some((r) => r.med[p] != null));
  const peers = PEERS.filter(peerRun);
  const head = ['figure', 'target', ...peers.map((p) => peerRun(p).labels[p]),
                ...withRegime.flatMap((run) => [`node:net ${major(run.machine.node)}`, `rust-net ${major(run.machine.node)}`])];
  const lines = [`| ${head.join(' | ')} |`, `| --- | --- | ${head.slice(2).map(() => '---:').join(' | ')} |`];
  for (const key of keys) {
    const any = withRegime.map((run) => run.summaries[regime].find((r) => r.key === key)).find(Boolean);
    const target = any.target == null ? '' : `${any.dir === 'higher' ? '≥' : '≤'} ${any.target.toFixed(2)}`;
    const cells = [`${any.label} (${any.unit})`, target];
    for (const p of peers) {
      const r = peerRun(p).summaries[regime].find((x) => x.key === key);
      cells.push(r ? fmt(r.med[p], r.unit) : '—');
    }
    for (const run of withRegime) {
      const r = run.summaries[regime].find((x) => x.key === key);
      const ratio = r ? r.ratios[run.primary] : null;
      cells.push(r ? fmt(r.med.node, r.unit) : '—');
      cells.push(r && r.med[run.primary] != null ?
        `${fmt(r.med[run.primary], r.unit)} (${fr(ratio)}${meets(r, ratio) === false ? ' ✗' : ''})` : '—');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function runsTable(runs) {
  const lines = ['| Node | libuv | run | rounds | rust-net commit | Bun | Deno | other work on the machine |',
                 '| --- | --- | --- | ---: | --- | --- | --- | --- |'];
  for (const run of runs) {
    const m = run.machine;
    const busy = m.busyRows && m.busyRows.length ?
      `above 0.15 cores in ${m.busyRows.length} figures` : 'below 0.15 cores in every figure';
    lines.push(`| ${m.node} | ${m.uv} | ${m.date}${run.config.quick ? ' (--quick)' : ''}, ${m.minutes} min | ` +
               `${run.config.rounds} | ${m.commit} | ${m.peers?.bun ?? '—'} | ${m.peers?.deno ?? '—'} | ${busy} |`);
  }
  return lines.join('\n');
}

function misses(runs) {
  const out = [];
  for (const run of runs) {
    for (const [regime, rows] of Object.entries(run.summaries)) {
      for (const r of rows) {
        const ratio = r.ratios[run.primary];
        if (meets(r, ratio) === false) out.push(`Node ${major(run.machine.node)} ${regime}: ${r.label} ${fr(ratio)}`);
      }
    }
  }
  return out;
}

function chart(runs) {
  const panels = runs.flatMap((run) => Object.entries(run.summaries).map(([regime, rows]) => ({
    name: `${major(run.machine.node)} ${regime}`,
    rows: rows.map((r) => ({ ...r, ratio: r.ratios[run.primary], meets: meets(r, r.ratios[run.primary]) })),
  })));
  const newest = runs[runs.length - 1];
  const variants = newest ? newest.variants.filter((v) => v !== 'node') : [];
  const m = newest ? newest.machine : {};
  return renderSvg(panels, `Node ${runs.map((r) => major(r.machine.node)).join(', ')}; ${m.nproc} CPUs (${m.virt})`, {
    variants, primary: newest ? newest.primary : 'auto', labels: newest ? newest.labels : {},
    fills: { bun: '#f0a030', deno: '#3070c0', threads: '#000000' },
    heading: 'ratio of medians to node:net on the same Node: rust-net (bar), Bun, Deno, other rust-net variants',
  });
}

function page(runs) {
  const m = runs.length ? runs[runs.length - 1].machine : null;
  const parts = [
    '# Benchmark results: current figures',
    '',
    '<!-- Generated by bench/report.js from bench/results/*.json (`npm run bench` saves one per Node); do not edit. -->',
    '',
    'node:net, rust-net (its automatic accept placement, under `-r rust-net/register` for http), Bun and Deno ' +
    'serving the same program (bench/server.js), one complete `npm run bench` per Node. The ratio in brackets is ' +
    'rust-net ÷ node:net on the same Node; ✗ marks a ratio that misses its target. Throughput rows want ≥ 1, ' +
    'latency, CPU and memory rows ≤ 1. How the figures are taken, what bounds each target, the profiles and every ' +
    'experiment: [JOURNAL.md](JOURNAL.md); how to run the bench: [docs/benchmarks.md](../docs/benchmarks.md).',
    '',
  ];
  if (!runs.length) return `${parts.join('\n')}\n_No complete run is saved in bench/results/ yet._\n`;
  parts.push(
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memGiB} GiB, ${m.kernel} (${m.virt}).`,
    '',
    runsTable(runs),
    '',
    '![ratios to node:net](ratios.svg)',
  );
  for (const [regime, title] of Object.entries(REGIMES)) {
    if (!runs.some((run) => run.summaries[regime])) continue;
    parts.push('', `## ${title}`, '', regimeTable(runs, regime));
  }
  const missed = misses(runs);
  parts.push('', '## Targets missed', '',
             missed.length ? missed.map((x) => `- ${x}`).join('\n') : 'None.',
             '', 'What bounds each of them, measured: [JOURNAL.md](JOURNAL.md#what-bounds-the-targets-on-node-24-and-26).');
  parts.push(...journalBlocks());
  return `${parts.join('\n')}\n`;
}

// Rewrites RESULTS.md and ratios.svg from every saved run.
function writePage() {
  const runs = loadRuns();
  fs.writeFileSync(PAGE, page(runs));
  if (runs.length) fs.writeFileSync(CHART, chart(runs));
}

module.exports = { saveRun, writePage };

if (require.main === module) writePage();
