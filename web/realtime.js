// The second demo page: the same walrelay, read with Supabase's own client
// (supabase-js's browser build, served by the demo at vendor/supabase.js).
// walrelay's demo runs with auth: none, so any key is accepted.
const MAX_ROWS = 40;
const $ = (id) => document.getElementById(id);

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function addRow(change) {
  const row = change.new && change.new.id !== undefined ? change.new : change.old;
  const tr = document.createElement('tr');
  tr.className = 'fresh';
  const cells = [
    `<span class="op ${change.eventType.toLowerCase()}">${change.eventType}</span>`,
    `#${row.id}`,
    change.new?.status ?? '',
    change.new?.total ?? '',
    new Date(change.commit_timestamp).toLocaleTimeString(),
  ];
  tr.innerHTML = cells.map((cell) => `<td>${String(cell).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])}</td>`).join('');
  tr.firstChild.innerHTML = cells[0];
  $('events').prepend(tr);
  while ($('events').children.length > MAX_ROWS) $('events').lastChild.remove();
}

if (typeof window.supabase === 'undefined') {
  $('missing').hidden = false;
  setStatus('closed', 'supabase-js missing');
} else {
  const client = window.supabase.createClient(location.origin, 'walrelay-demo');
  client.channel('orders')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'orders' }, addRow)
    .subscribe((status) => setStatus(status === 'SUBSCRIBED' ? 'open' : 'connecting', status === 'SUBSCRIBED' ? 'subscribed' : status.toLowerCase()));
}
