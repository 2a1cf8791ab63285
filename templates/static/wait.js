// Waits for the login challenge (long polling) and moves on when the agent answers.
// Served from /static (the CSP forbids inline scripts). Without JavaScript,
// the page refreshes itself every few seconds instead.
(function () {
  'use strict';
  function start() {
    var box = document.getElementById('wait');
    if (!box) return;
    var statusUrl = box.getAttribute('data-status-url');
    var nextUrl = box.getAttribute('data-next-url');
    var line = document.getElementById('wait-status');
    var stopped = false;
    // The page's own forms (send again, cancel) end this challenge: once
    // one is sent, its answer is where the browser goes, and the poller
    // must not move it to this challenge's outcome instead.
    document.addEventListener('submit', function () { stopped = true; }, true);
    function show(text) { if (line) line.textContent = text; }
    function poll() {
      if (stopped) return;
      var sent = Date.now();
      fetch(statusUrl + '?wait=25', { credentials: 'same-origin', cache: 'no-store', headers: { 'Accept': 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : { status: 'error' }; })
        .then(function (s) {
          if (stopped) return;
          if (s.status === 'pending') {
            show('Waiting for your agent… (' + s.seconds_left + ' s)');
            // A busy bridge answers at once instead of holding the request:
            // then ask again a second later, not in a tight loop.
            if (Date.now() - sent < 1000) setTimeout(poll, 1000);
            else poll();
          } else {
            stopped = true;
            window.location.assign(nextUrl);
          }
        })
        .catch(function () { setTimeout(poll, 2000); });
    }
    poll();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
