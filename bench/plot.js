'use strict';

// A horizontal bar chart of the ratios rust-net / node:net as SVG text — no
// dependencies. One group per figure, one line per regime (unpinned, pinned):
// a bar for the automatic placement's ratio — green where the target is met,
// red where it is not, grey where there is none — and a marker for each
// forced placement (runtime ○, event-loop ◇, others △). A solid line at 1.0
// (parity) and, for figures whose target is not 1.0, a dashed tick at the
// target.
//
//   renderSvg(panels, title, { variants, primary, labels })
//     panels: [{ name: 'unpinned', rows }, ...], rows as bench/run.js's
//             summarize() returns them (ratios per variant, meets, target...).
//   renderSvg(rows, title) — one regime, rows with .ratio (the older form).

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const MARKERS = ['circle', 'diamond', 'triangle', 'square'];

function marker(kind, cx, cy, fill = '#ffffff') {
  const c = `fill="${fill}" stroke="#000000" stroke-width="1.3"`;
  const x = cx.toFixed(1);
  const y = cy.toFixed(1);
  switch (kind) {
    case 'circle': return `<circle cx="${x}" cy="${y}" r="4" ${c}/>`;
    case 'diamond': return `<path d="M ${x} ${(cy - 5).toFixed(1)} l 5 5 l -5 5 l -5 -5 z" ${c}/>`;
    case 'triangle': return `<path d="M ${x} ${(cy - 5).toFixed(1)} l 5 9 l -10 0 z" ${c}/>`;
    default: return `<rect x="${(cx - 4).toFixed(1)}" y="${(cy - 4).toFixed(1)}" width="8" height="8" ${c}/>`;
  }
}

function renderSvg(panelsArg, title, opts = {}) {
  // The older form: one list of rows with .ratio for rust-net.
  const panels = Array.isArray(panelsArg) && (panelsArg.length === 0 || panelsArg[0].rows === undefined) ?
    [{ name: '', rows: panelsArg.map((r) => ({ ...r, ratios: r.ratios || { rust: r.ratio } })) }] : panelsArg;
  const primary = opts.primary || 'rust';
  const others = (opts.variants || []).filter((v) => v !== primary);
  const labels = opts.labels || {};
  // opts.fills: a fill colour per variant (filled markers for other
  // runtimes); a filled variant's marker kind cycles separately.
  const fills = opts.fills || {};
  const open = others.filter((v) => !fills[v]);
  const filled = others.filter((v) => fills[v]);
  const kinds = Object.fromEntries([...open.map((v, i) => [v, MARKERS[Math.min(i, MARKERS.length - 1)]]),
                                    ...filled.map((v, i) => [v, MARKERS[(MARKERS.length - 1 - i + MARKERS.length) % MARKERS.length]])]);

  // Figures in the order they first appear, each with its row in every panel.
  const figures = [];
  const seen = new Map();
  for (const p of panels) {
    for (const r of p.rows) {
      if (!seen.has(r.key)) { seen.set(r.key, figures.length); figures.push({ head: r, lines: [] }); }
    }
  }
  for (const f of figures) {
    for (const p of panels) {
      const r = p.rows.find((x) => x.key === f.head.key);
      if (r) f.lines.push({ panel: p.name, r });
    }
  }
  const nLines = figures.reduce((a, f) => a + f.lines.length, 0);

  const labelW = 430;
  const regimeW = panels.length > 1 ? 70 : 0;
  const plotW = 400;
  const rowH = 18;
  const groupGap = 6;
  const top = 58;
  const left = 12;
  const width = left + labelW + regimeW + plotW + 60;
  const plotH = nLines * rowH + figures.length * groupGap;
  const height = top + plotH + 76;
  const all = [];
  for (const f of figures) {
    for (const { r } of f.lines) for (const v of Object.values(r.ratios || {})) if (v != null) all.push(v);
  }
  // Up to 3.0: a bar beyond it (a noisy window) is cut at the edge, its number still shown.
  const xmax = Math.min(3, Math.ceil(Math.max(2, ...all) * 4) / 4);
  const x0 = left + labelW + regimeW;
  const x = (v) => x0 + (Math.min(Math.max(v, 0), xmax) / xmax) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
           `viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(opts.heading || 'rust-net / node:net (ratio of medians)')}</text>`);
  out.push(`<text x="${left}" y="38" fill="#555555">${esc(title)}</text>`);
  // grid
  for (let v = 0; v <= xmax + 1e-9; v += 0.25) {
    const gx = x(v).toFixed(1);
    const major = Math.abs(v - Math.round(v * 2) / 2) < 1e-9;
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + plotH}" stroke="${major ? '#dddddd' : '#f0f0f0'}"/>`);
    if (major) out.push(`<text x="${gx}" y="${top + plotH + 16}" text-anchor="middle" fill="#555555">${v.toFixed(1)}</text>`);
  }
  const px = x(1).toFixed(1);
  out.push(`<line x1="${px}" y1="${top - 4}" x2="${px}" y2="${top + plotH}" stroke="#000000" stroke-width="1.5"/>`);
  let y = top;
  figures.forEach((f, gi) => {
    if (gi % 2 === 1) {
      out.push(`<rect x="${left - 4}" y="${y - 2}" width="${width - left}" height="${f.lines.length * rowH + 4}" fill="#000000" fill-opacity="0.035"/>`);
    }
    const dir = f.head.dir === 'higher' ? '↑' : '↓';
    out.push(`<text x="${left}" y="${y + 13}">${esc(`${f.head.row}. ${f.head.label} ${dir}`)}</text>`);
    for (const { panel, r } of f.lines) {
      if (regimeW) out.push(`<text x="${left + labelW}" y="${y + 13}" fill="#555555">${esc(panel)}</text>`);
      const ratio = r.ratios ? r.ratios[primary] : r.ratio;
      if (ratio != null) {
        const color = r.meets == null ? '#9e9e9e' : r.meets ? '#2e7d32' : '#c62828';
        out.push(`<rect x="${x(0).toFixed(1)}" y="${y + 3}" width="${(x(ratio) - x(0)).toFixed(1)}" height="${rowH - 6}" ` +
                 `fill="${color}" fill-opacity="0.85"/>`);
      }
      for (const v of others) {
        const rv = r.ratios ? r.ratios[v] : null;
        if (rv != null) out.push(marker(kinds[v], x(rv), y + rowH / 2, fills[v]));
      }
      if (ratio != null) {
        // The bar's number: right of the bar and of every marker, or, with
        // filled markers (other runtimes, often far right), in a column of
        // its own past the plot so it is not read as theirs.
        const tx = filled.length ? x0 + plotW + 8 :
          Math.max(x(ratio) + (ratio > xmax ? 6 : 0), ...others.map((v) => (r.ratios && r.ratios[v] != null ? x(r.ratios[v]) + 4 : 0))) + 5;
        out.push(`<text x="${tx.toFixed(1)}" y="${y + 13}" stroke="#ffffff" stroke-width="3" ` +
                 `paint-order="stroke">${ratio.toFixed(2)}</text>`);
      }
      if (r.target != null && Math.abs(r.target - 1) > 1e-9) {
        const tx = x(r.target).toFixed(1);
        out.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#000000" stroke-dasharray="3,2"/>`);
      }
      y += rowH;
    }
    y += groupGap;
  });
  const legendY = top + plotH + 34;
  let lx = left;
  out.push(`<rect x="${lx}" y="${legendY - 9}" width="14" height="10" fill="#2e7d32" fill-opacity="0.85"/>`);
  lx += 18;
  const barText = `bar: ${labels[primary] || primary} (the number)`;
  out.push(`<text x="${lx}" y="${legendY}" fill="#555555">${esc(barText)}</text>`);
  lx += barText.length * 6.2 + 16;
  for (const v of others) {
    out.push(marker(kinds[v], lx + 5, legendY - 4, fills[v]));
    out.push(`<text x="${lx + 14}" y="${legendY}" fill="#555555">${esc(labels[v] || v)}</text>`);
    lx += 14 + String(labels[v] || v).length * 6.5 + 16;
  }
  out.push(`<text x="${left}" y="${legendY + 16}" fill="#555555">${esc(
    '↑ higher is better (target ≥ 1); ↓ lower is better (target ≤ 1, or the dashed line where it is lower).')}</text>`);
  out.push(`<text x="${left}" y="${legendY + 31}" fill="#555555">${esc(
    'Bar green: target met; red: not met; grey: no target. Solid line: parity (1.0).')}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { renderSvg };
