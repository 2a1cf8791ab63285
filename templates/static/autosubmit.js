// Submits the form_post authorization response to the client. Served from
// /static because the page's CSP forbids inline scripts.
(function () {
  'use strict';
  function go() { var f = document.getElementById('response'); if (f) f.submit(); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go);
  else go();
})();
