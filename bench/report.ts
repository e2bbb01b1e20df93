// The benchmark's outputs: a markdown table (bench/RESULTS.md) and an SVG bar
// chart of the throughput ratios to pg_recvlogical.
import { cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';

export interface ThroughputRow {
  scenario: string;
  consumer: string;
  events: number;
  walMb: number;
  seconds: number;
  ratio: number | null;
  peakRssMb: number | null;
  cpuSecondsPerMillion: number | null;
  /** CPU steal by the hypervisor during the run, percent. */
  stealPercent: number;
  /** The walsender's CPU seconds per million events for this drain. */
  walsenderCpuSecondsPerMillion: number | null;
  /** The consumer's CPU time divided by its walsender's, same drain. */
  cpuOverWalsender: number | null;
  /** The walsender's CPU time over the drain's wall time, percent. */
  walsenderBusyPercent: number | null;
}

export function machineDescription(postgresVersion: string): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return [
    `- ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB memory`,
    `- Node ${process.version}, PostgreSQL ${postgresVersion}, Redis ${redisVersion()}`,
    `- ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  ].join('\n');
}

function redisVersion(): string {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

const fixed = (value: number | null, digits = 1) => (value === null || Number.isNaN(value) ? '–' : value.toFixed(digits));
const thousands = (value: number) => Math.round(value).toLocaleString('en');

export function throughputTable(rows: ThroughputRow[]): string {
  const lines = [
    '| scenario | consumer | events | rows/s | WAL MB/s | × pg_recvlogical | peak RSS MB | CPU s / M events | walsender CPU s / M events | relay ÷ walsender CPU | walsender busy % | CPU steal % |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    lines.push(`| ${row.scenario} | ${row.consumer} | ${thousands(row.events)} | ${thousands(row.events / row.seconds)} | ${fixed(row.walMb / row.seconds)} | ${row.ratio === null ? '1.00' : fixed(row.ratio, 2)} | ${fixed(row.peakRssMb, 0)} | ${fixed(row.cpuSecondsPerMillion)} | ${fixed(row.walsenderCpuSecondsPerMillion)} | ${fixed(row.cpuOverWalsender, 2)} | ${fixed(row.walsenderBusyPercent, 0)} | ${fixed(row.stealPercent, 0)} |`);
  }
  return lines.join('\n');
}

export function ratioChart(rows: ThroughputRow[]): string {
  const bars = rows.filter((row) => row.ratio !== null);
  const rowHeight = 22;
  const left = 330;
  const width = 820;
  const height = bars.length * rowHeight + 60;
  const scale = (width - left - 60) / Math.max(1.2, ...bars.map((row) => row.ratio!));
  const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="600">walrelay throughput as a multiple of pg_recvlogical (same backlog, same run)</text>`,
    `<line x1="${left + scale}" y1="30" x2="${left + scale}" y2="${height - 20}" stroke="#999" stroke-dasharray="4 3"/>`,
    `<text x="${left + scale + 4}" y="${height - 8}" fill="#666">1.0 = pg_recvlogical</text>`,
  ];
  bars.forEach((row, i) => {
    const y = 36 + i * rowHeight;
    const colour = row.ratio! >= 0.9 ? '#2f9e6f' : row.ratio! >= 0.6 ? '#3b7dd8' : '#d9822b';
    parts.push(`<text x="10" y="${y + 14}">${escapeXml(`${row.scenario} → ${row.consumer}`)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 2}" width="${Math.max(1, row.ratio! * scale)}" height="${rowHeight - 6}" fill="${colour}"/>`);
    parts.push(`<text x="${left + row.ratio! * scale + 6}" y="${y + 14}">${row.ratio!.toFixed(2)}×</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
