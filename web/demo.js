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

function describe(event) {
  if (event.op === 'delete') return 'row removed';
  if (!event.new) return event.op;
  const entries = Object.entries(event.new).filter(([column]) => !(event.key && column in event.key));
  return entries.map(([column, value]) => `${column}=${typeof value === 'object' ? JSON.stringify(value) : value}`).join('  ');
}

function addRow(event) {
  const row = document.createElement('tr');
  row.className = 'fresh';
  row.dataset.table = `${event.schema}.${event.table}`;
  const cells = [
    `<span class="op ${event.op}">${event.op}</span>`,
    `${event.schema}.${event.table}`,
    `<code>${escape(JSON.stringify(event.key ?? {}))}</code>`,
    `<code>${escape(describe(event))}</code>`,
    new Date(event.commitTime).toLocaleTimeString(),
  ];
  row.innerHTML = cells.map((cell) => `<td>${cell}</td>`).join('');
  row.children[3].title = JSON.stringify(event.new ?? event.old);
  const body = $('events');
  body.prepend(row);
  while (body.children.length > MAX_ROWS) body.lastChild.remove();
}

function escape(text) {
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
  const max = Math.max(5, ...perSecond.slice(0, -1));
  g.strokeStyle = '#262c35';
  g.fillStyle = '#8a93a3';
  g.font = '11px system-ui';
  for (let i = 0; i <= 4; i++) {
    const y = 8 + ((height - 24) * i) / 4;
    g.beginPath(); g.moveTo(32, y); g.lineTo(width, y); g.stroke();
    g.fillText(String(Math.round(max - (max * i) / 4)), 0, y + 4);
  }
  // The current second is still filling up: plot the complete ones.
  const complete = perSecond.slice(0, -1);
  const step = (width - 36) / (complete.length - 1);
  const points = complete.map((value, i) => [36 + i * step, 8 + (height - 24) * (1 - value / max)]);
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
  subscriptions: [{ id: 'all', table: 'public.*' }],
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
