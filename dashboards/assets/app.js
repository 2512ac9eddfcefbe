// faultline dashboard: times in the viewer's zone with relative ages, and live updates over server-sent events.
(function () {
  'use strict';

  var absolute = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  var full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  var clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  var day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

  function relative(ms) {
    var s = Math.round(Math.abs(ms) / 1000);
    var text = s < 45 ? s + ' s' : s < 2700 ? Math.round(s / 60) + ' min' : s < 64800 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' d';
    return ms >= 0 ? text + ' ago' : 'in ' + text;
  }

  function localize(root) {
    root.querySelectorAll('time[datetime]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (isNaN(d.getTime())) return;
      el.title = full.format(d);
      el.textContent = el.hasAttribute('data-ago') ? relative(Date.now() - d.getTime()) : absolute.format(d);
    });
    root.querySelectorAll('svg [data-time]').forEach(function (el) {
      var d = new Date(el.getAttribute('data-time'));
      if (!isNaN(d.getTime())) el.textContent = (el.getAttribute('data-format') === 'day' ? day : clock).format(d);
    });
  }

  function refreshAges() {
    document.querySelectorAll('time[data-ago]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (!isNaN(d.getTime())) el.textContent = relative(Date.now() - d.getTime());
    });
  }

  function toast(event) {
    var box = document.getElementById('toasts');
    if (!box) return;
    var el = document.createElement('div');
    el.className = 'toast' + (event.type === 'fault.resolved' ? ' resolved' : '');
    var title = event.type === 'fault.opened' ? 'New fault' : event.type === 'fault.resolved' ? 'Resolved' : event.type === 'action' ? 'Supervisor action' : 'Notification';
    var strong = document.createElement('strong');
    strong.textContent = title + ': ';
    el.appendChild(strong);
    if (event.href) {
      var a = document.createElement('a');
      a.href = event.href;
      a.textContent = event.summary;
      el.appendChild(a);
    } else el.appendChild(document.createTextNode(event.summary));
    box.appendChild(el);
    while (box.children.length > 4) box.removeChild(box.firstChild);
    setTimeout(function () { if (el.parentNode) el.parentNode.removeChild(el); }, 10000);
  }

  // Live regions (elements with data-live and an id) are refreshed from a fresh render of the same page.
  var pending = null;
  var inFlight = false;
  function refreshLive() {
    if (!document.querySelector('[data-live][id]')) return;
    if (pending) return;
    pending = setTimeout(function run() {
      if (inFlight) { pending = setTimeout(run, 300); return; }
      pending = null;
      inFlight = true;
      var known = {};
      document.querySelectorAll('[data-fault-id]').forEach(function (el) { known[el.getAttribute('data-fault-id')] = true; });
      fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' })
        .then(function (res) { return res.ok ? res.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, 'text/html');
          document.querySelectorAll('[data-live][id]').forEach(function (el) {
            var next = doc.getElementById(el.id);
            if (!next) return;
            el.innerHTML = next.innerHTML;
            localize(el);
            el.querySelectorAll('[data-fault-id]').forEach(function (row) {
              if (!known[row.getAttribute('data-fault-id')]) row.classList.add('fresh');
            });
          });
          document.documentElement.setAttribute('data-refreshed', String(Date.now()));
        })
        .catch(function () {})
        .then(function () { inFlight = false; });
    }, 250);
  }

  function connect() {
    var status = document.getElementById('live-status');
    var label = status && status.querySelector('.live-text');
    function set(state, text) {
      if (!status) return;
      status.setAttribute('data-state', state);
      if (label) label.textContent = text;
    }
    if (!window.EventSource) return set('offline', 'no live updates');
    var source = new EventSource('/events');
    source.onopen = function () { set('live', 'live'); };
    source.onerror = function () { set('offline', 'reconnecting'); };
    ['fault.opened', 'fault.resolved', 'action', 'notification'].forEach(function (type) {
      source.addEventListener(type, function (e) {
        var event;
        try { event = JSON.parse(e.data); } catch (err) { return; }
        if (type !== 'notification') toast(event);
        refreshLive();
      });
    });
  }

  // A chart wider than the screen scrolls to what matters (the fault's detection), not to its left edge.
  function focusCharts() {
    document.querySelectorAll('.timeline-wrap[data-focus]').forEach(function (wrap) {
      var f = Number(wrap.getAttribute('data-focus'));
      if (wrap.scrollWidth > wrap.clientWidth && isFinite(f)) wrap.scrollLeft = f * wrap.scrollWidth - wrap.clientWidth / 2;
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    localize(document);
    focusCharts();
    setInterval(refreshAges, 15000);
    // Besides the events, a visible page refreshes its live parts now and then (targets come and go quietly).
    setInterval(function () { if (document.visibilityState === 'visible') refreshLive(); }, 30000);
    if (document.getElementById('live-status')) connect();
  });
})();
