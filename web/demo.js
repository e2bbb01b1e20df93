// The demo page: a live table of the latest change events and an
// events-per-second chart, fed by walrelay's websocket sink.
import { connect } from './walrelay-client.js';

const MAX_ROWS = 40;
const WINDOW_SECONDS = 60;
const counts = { insert: 0, update: 0, delete: 0 };
const perSecond = new Array(WINDOW_SECONDS).fill(0);
let total = 0;
let currentSecond = Math.floor(Date.now() / 1000);

const $ = (id) => document.getElementById(id);
$('host').textContent = location.host;

function advanceClock() {
  const now = Math.floor(Date.now() / 1000);
  while (currentSecond < now) {
    perSecond.shift();
    perSecond.push(0);
    currentSecond++;
  }
}

const show = (value) => (typeof value === 'object' ? JSON.stringify(value) : String(value));

/** What the change did: for an update with the old row (REPLICA IDENTITY FULL), only the columns that changed. */
function describe(event) {
  if (event.op === 'delete') return escapeHtml('row removed');
  if (!event.new) return escapeHtml(event.op);
  const entries = Object.entries(event.new).filter(([column]) => !(event.key && column in event.key));
  if (event.op === 'update' && event.old) {
    const changed = entries.filter(([column, value]) => show(value) !== show(event.old[column]));
    if (changed.length === 0) return escapeHtml('no column changed');
    return changed.map(([column, value]) => `${escapeHtml(column)}: ${escapeHtml(show(event.old[column]))} <span class="change-arrow">→</span> ${escapeHtml(show(value))}`).join('  ');
  }
  return escapeHtml(entries.map(([column, value]) => `${column}=${show(value)}`).join('  '));
}

/** The smallest 1, 2 or 5 × 10^n step such that four steps reach `max`: even, round axis labels. */
function axisStep(max) {
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough);
  return Math.max(1, step);
}

function addRow(event) {
  const row = document.createElement('tr');
  row.className = 'fresh';
  row.dataset.table = `${event.schema}.${event.table}`;
  const cells = [
    `<span class="op ${event.op}">${event.op}</span>`,
    `${event.schema}.${event.table}`,
    `<code>${escapeHtml(JSON.stringify(event.key ?? {}))}</code>`,
    `<code>${describe(event)}</code>`,
    new Date(event.commitTime).toLocaleTimeString(),
  ];
  row.innerHTML = cells.map((cell, i) => `<td${i === 4 ? ' class="time"' : ''}>${cell}</td>`).join('');
  row.children[3].title = JSON.stringify(event.new ?? event.old);
  const body = $('events');
  body.prepend(row);
  while (body.children.length > MAX_ROWS) body.lastChild.remove();
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

function drawChart() {
  advanceClock();
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const labelStep = axisStep(Math.max(4, ...perSecond.slice(0, -1)));
  const max = labelStep * 4;
  canvas.dataset.axis = [4, 3, 2, 1, 0].map((i) => labelStep * i).join(',');
  g.strokeStyle = '#262c35';
  g.fillStyle = '#8a93a3';
  g.font = '11px system-ui';
  g.textAlign = 'right';
  for (let i = 0; i <= 4; i++) {
    const y = 8 + ((height - 24) * i) / 4;
    g.beginPath(); g.moveTo(32, y); g.lineTo(width, y); g.stroke();
    g.fillText(String(labelStep * (4 - i)), 28, y + 4);
  }
  // The current second is still filling up: plot the complete ones.
  const complete = perSecond.slice(0, -1);
  const xStep = (width - 36) / (complete.length - 1);
  const points = complete.map((value, i) => [36 + i * xStep, 8 + (height - 24) * (1 - value / max)]);
  const gradient = g.createLinearGradient(0, 0, 0, height);
  gradient.addColorStop(0, 'rgba(60, 207, 145, 0.35)');
  gradient.addColorStop(1, 'rgba(60, 207, 145, 0)');
  g.beginPath();
  g.moveTo(points[0][0], height - 16);
  points.forEach(([x, y]) => g.lineTo(x, y));
  g.lineTo(points[points.length - 1][0], height - 16);
  g.fillStyle = gradient;
  g.fill();
  g.beginPath();
  points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
  g.strokeStyle = '#3ccf91';
  g.lineWidth = 2;
  g.stroke();
  $('rate').textContent = perSecond[WINDOW_SECONDS - 2];
}

connect(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`, {
  subscriptions: [{ id: 'all', table: 'public.*', recent: 30 }],
  onStatus: (state) => {
    $('status').dataset.state = state;
    $('status').textContent = state === 'open' ? '● live' : state === 'connecting' ? 'connecting…' : 'reconnecting…';
  },
  onChange: (event) => {
    advanceClock();
    perSecond[WINDOW_SECONDS - 1]++;
    total++;
    if (event.op in counts) counts[event.op]++;
    $('total').textContent = total;
    for (const op of Object.keys(counts)) $(`count-${op}`).textContent = counts[op];
    addRow(event);
  },
  onError: (error) => console.warn('walrelay:', error),
});

setInterval(drawChart, 1000);
drawChart();
