'use strict';

// A horizontal bar chart of the ratios rust-net / node:net as SVG text — no
// dependencies. One bar per figure; a solid line at 1.0 (parity) and, for
// figures whose target is not 1.0, a dashed tick at the target. Bars are green
// where the target is met, red where it is not, grey where there is none.

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function renderSvg(rows, title) {
  const labelW = 400;
  const plotW = 420;
  const rowH = 22;
  const top = 56;
  const left = 12;
  const width = left + labelW + plotW + 70;
  const height = top + rows.length * rowH + 58;
  const maxRatio = Math.max(2, ...rows.map((r) => r.ratio));
  const xmax = Math.ceil(maxRatio * 4) / 4;
  const x = (v) => left + labelW + (Math.min(v, xmax) / xmax) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
           `viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc('rust-net / node:net (ratio of medians)')}</text>`);
  out.push(`<text x="${left}" y="38" fill="#555555">${esc(title)}</text>`);
  // grid
  for (let v = 0; v <= xmax + 1e-9; v += 0.25) {
    const gx = x(v).toFixed(1);
    const major = Math.abs(v - Math.round(v * 2) / 2) < 1e-9;
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + rows.length * rowH}" ` +
             `stroke="${major ? '#dddddd' : '#f0f0f0'}"/>`);
    if (major) {
      out.push(`<text x="${gx}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#555555">${v.toFixed(1)}</text>`);
    }
  }
  const px = x(1).toFixed(1);
  out.push(`<line x1="${px}" y1="${top - 4}" x2="${px}" y2="${top + rows.length * rowH}" stroke="#000000" stroke-width="1.5"/>`);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const color = r.meets == null ? '#9e9e9e' : r.meets ? '#2e7d32' : '#c62828';
    const dir = r.dir === 'higher' ? '↑' : '↓';
    out.push(`<text x="${left}" y="${y + 15}">${esc(`${r.row}. ${r.label} ${dir}`)}</text>`);
    out.push(`<rect x="${x(0).toFixed(1)}" y="${y + 4}" width="${(x(r.ratio) - x(0)).toFixed(1)}" height="${rowH - 8}" ` +
             `fill="${color}" fill-opacity="0.85"/>`);
    out.push(`<text x="${(x(r.ratio) + 4).toFixed(1)}" y="${y + 15}" stroke="#ffffff" stroke-width="3" ` +
             `paint-order="stroke">${r.ratio.toFixed(2)}</text>`);
    if (r.target != null && Math.abs(r.target - 1) > 1e-9) {
      const tx = x(r.target).toFixed(1);
      out.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#000000" stroke-dasharray="3,2"/>`);
    }
  });
  out.push(`<text x="${left}" y="${height - 22}" fill="#555555">${esc(
    '↑ higher is better (target ≥ 1); ↓ lower is better (target ≤ 1; event-loop CPU ≤ 0.67, dashed line).')}</text>`);
  out.push(`<text x="${left}" y="${height - 7}" fill="#555555">${esc(
    'Green: target met; red: not met; grey: no target. Solid line: parity (1.0).')}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { renderSvg };
