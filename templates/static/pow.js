/*
 * Cyrcles bridge: proof-of-work solver for the login form.
 *
 * Served as a static file under `script-src 'self'`: no inline script, no
 * eval, no dependencies, plain ES2017. The server side is bridge/src/pow/;
 * its module documentation describes the token format and the checks.
 *
 * Contract with the page:
 *   <form method="post" data-pow-token="TOKEN" data-pow-difficulty="BITS">
 *     <input type="hidden" name="pow_token" value="TOKEN">
 *     <input type="hidden" name="pow_solution" value="">
 *     ...
 *     <p id="pow-status" aria-live="polite"></p>
 *   </form>
 *   <script src="/static/pow.js" defer></script>
 *
 * On submit, a form with both data attributes and an empty `pow_solution`
 * is held back: its submit buttons are disabled, the solver searches for
 * the smallest decimal counter N such that SHA-256(TOKEN ":" N) starts with
 * at least BITS zero bits, in slices of about 40 ms separated by
 * setTimeout(0) so the page stays responsive, and the form is then submitted
 * with `pow_solution` = N (and `pow_token` = TOKEN; both hidden inputs are
 * created if the page lacks them). The optional #pow-status element gets
 * progress text; its attributes data-pow-working, data-pow-done and
 * data-pow-failed override the English defaults.
 *
 * For tests, Node can load this file: it then exports { sha256hex, solve,
 * Solver } and touches no DOM.
 */
(function () {
  'use strict';

  // ---- SHA-256 (FIPS 180-4) ------------------------------------------------

  // First 32 bits of the fractional parts of the cube roots of the first
  // 64 primes.
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  // First 32 bits of the fractional parts of the square roots of the first
  // 8 primes.
  var IV = new Int32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  ]);

  // Expands the 64-byte block of `buf` at `off` into the message schedule
  // `W` (64 words).
  function schedule(W, buf, off) {
    var i, x, y;
    for (i = 0; i < 16; i++) {
      var j = off + (i << 2);
      W[i] = (buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3];
    }
    for (i = 16; i < 64; i++) {
      x = W[i - 15];
      y = W[i - 2];
      W[i] = (W[i - 16] +
        (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
        W[i - 7] +
        (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
    }
  }

  // The 64 rounds of the compression function: folds the schedule `W` of
  // one block into the state `H`.
  function rounds(H, W) {
    var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (var i = 0; i < 64; i++) {
      var t1 = (h +
        (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      var t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    H[0] = (H[0] + a) | 0;
    H[1] = (H[1] + b) | 0;
    H[2] = (H[2] + c) | 0;
    H[3] = (H[3] + d) | 0;
    H[4] = (H[4] + e) | 0;
    H[5] = (H[5] + f) | 0;
    H[6] = (H[6] + g) | 0;
    H[7] = (H[7] + h) | 0;
  }

  // Number of 64-byte blocks a message of `len` bytes occupies once padded.
  function blockCount(len) {
    return Math.floor((len + 72) / 64);
  }

  // Writes the padding for a `len`-byte message already at the start of
  // `buf` (which holds blockCount(len) blocks).
  function writePadding(buf, len) {
    var end = blockCount(len) * 64;
    buf.fill(0, len, end);
    buf[len] = 0x80;
    var hi = Math.floor(len / 0x20000000); // (len * 8) >>> 32
    var lo = (len * 8) % 0x100000000;
    buf[end - 8] = hi >>> 24;
    buf[end - 7] = hi >>> 16;
    buf[end - 6] = hi >>> 8;
    buf[end - 5] = hi;
    buf[end - 4] = lo >>> 24;
    buf[end - 3] = lo >>> 16;
    buf[end - 2] = lo >>> 8;
    buf[end - 1] = lo;
  }

  // UTF-8 encoding of a JS string (lone surrogates become U+FFFD).
  function utf8(str) {
    var out = [];
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        var lo = str.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) {
        out.push(c);
      } else if (c < 0x800) {
        out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      } else if (c < 0x10000) {
        out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      } else {
        out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
    }
    return new Uint8Array(out);
  }

  // SHA-256 state after hashing a whole message (string: UTF-8 encoded).
  function digestState(msg) {
    if (typeof msg === 'string') msg = utf8(msg);
    var nblocks = blockCount(msg.length);
    var buf = new Uint8Array(nblocks * 64);
    buf.set(msg);
    writePadding(buf, msg.length);
    var H = new Int32Array(IV);
    var W = new Int32Array(64);
    for (var blk = 0; blk < nblocks; blk++) {
      schedule(W, buf, blk * 64);
      rounds(H, W);
    }
    return H;
  }

  // SHA-256 of a string (UTF-8 encoded) or Uint8Array, as lowercase hex.
  function sha256hex(msg) {
    var H = digestState(msg);
    var s = '';
    for (var i = 0; i < 8; i++) s += (H[i] >>> 0).toString(16).padStart(8, '0');
    return s;
  }

  // ---- Solver ------------------------------------------------------------

  // The server accepts at most 20 decimal digits.
  var MAX_DIGITS = 20;
  // The server never issues more than this many bits (pow MAX_DIFFICULTY).
  var MAX_DIFFICULTY = 32;

  // Incremental search over solutions "0", "1", "2", ... for one token. The
  // decimal counter lives directly in the message buffer, so one attempt is
  // an in-place increment plus one SHA-256, with no allocation. Blocks made
  // only of the fixed "TOKEN:" prefix are hashed once (midstate), and a
  // block's message schedule is recomputed only when its bytes changed (for
  // a 56-character token the second block is pure padding, so this saves a
  // quarter of the work).
  function Solver(token, difficulty) {
    var prefix = utf8(token + ':');
    var p = prefix.length;
    var nmax = blockCount(p + MAX_DIGITS);
    this.difficulty = difficulty;
    this.prefixLen = p;
    this.buf = new Uint8Array(nmax * 64);
    this.buf.set(prefix);
    this.digits = 1;
    this.buf[p] = 48; // "0"
    writePadding(this.buf, p + 1);
    this.fixedBlocks = p >> 6; // blocks before the first digit never change
    this.mid = new Int32Array(IV);
    this.W = [];
    for (var blk = 0; blk < nmax; blk++) this.W.push(new Int32Array(64));
    for (blk = 0; blk < this.fixedBlocks; blk++) {
      schedule(this.W[blk], this.buf, blk * 64);
      rounds(this.mid, this.W[blk]);
    }
    this.fresh = new Uint8Array(nmax); // 1 = W[blk] matches the buffer
    this.H = new Int32Array(8);
    this.tries = 0;
    this.exhausted = false;
  }

  // Tries at most `budget` candidates. Returns the solution (a string of
  // digits) or null if none was found yet; sets `exhausted` if the 20-digit
  // space ran out (never happens for difficulties the server issues).
  Solver.prototype.run = function (budget) {
    var buf = this.buf, H = this.H, Ws = this.W, fresh = this.fresh;
    var p = this.prefixLen, need = this.difficulty;
    if (this.exhausted) return null;
    for (var n = 0; n < budget; n++) {
      var len = p + this.digits;
      var nblocks = blockCount(len);
      H.set(this.mid);
      for (var blk = this.fixedBlocks; blk < nblocks; blk++) {
        if (fresh[blk] === 0) {
          schedule(Ws[blk], buf, blk * 64);
          fresh[blk] = 1;
        }
        rounds(H, Ws[blk]);
      }
      this.tries++;
      // Count the leading zero bits of the digest.
      var zeros = 0;
      for (var w = 0; w < 8; w++) {
        if (H[w] === 0) {
          zeros += 32;
        } else {
          zeros += Math.clz32(H[w]);
          break;
        }
      }
      if (zeros >= need) {
        var s = '';
        for (var k = p; k < len; k++) s += String.fromCharCode(buf[k]);
        this.increment();
        return s;
      }
      if (!this.increment()) return null;
    }
    return null;
  };

  // Advances the decimal counter in the buffer; false once exhausted.
  Solver.prototype.increment = function () {
    var buf = this.buf, p = this.prefixLen;
    var last = p + this.digits - 1;
    var i = last;
    while (i >= p && buf[i] === 57) { // "9"
      buf[i] = 48;
      i--;
    }
    if (i >= p) {
      buf[i]++;
      for (var blk = i >> 6; blk <= last >> 6; blk++) this.fresh[blk] = 0;
      return true;
    }
    // All nines rolled over: 99..9 + 1 = 100..0, one digit longer.
    if (this.digits >= MAX_DIGITS) {
      this.exhausted = true;
      return false;
    }
    buf[p] = 49; // "1"
    buf[p + this.digits] = 48;
    this.digits++;
    writePadding(buf, p + this.digits);
    this.fresh.fill(0);
    return true;
  };

  // Synchronous search: the first solution (smallest counter) for `token` at
  // `difficulty` bits, or null after `maxTries` attempts (default unlimited).
  function solve(token, difficulty, maxTries) {
    var solver = new Solver(String(token), difficulty | 0);
    var budget = maxTries === undefined ? Infinity : maxTries;
    while (budget > 0 && !solver.exhausted) {
      var chunk = Math.min(budget, 1 << 20);
      var found = solver.run(chunk);
      if (found !== null) return found;
      budget -= chunk;
    }
    return null;
  }

  // ---- Page wiring -------------------------------------------------------

  var SLICE_MS = 40;
  var BATCH = 1000;

  function now() {
    return (typeof performance !== 'undefined' && performance.now) ? performance.now() : Date.now();
  }

  function submitButtons(form) {
    return form.querySelectorAll(
      'button[type="submit"], button:not([type]), input[type="submit"], input[type="image"]');
  }

  function hiddenInput(form, name) {
    var els = form.elements ? form.elements.namedItem(name) : null;
    if (els && els.tagName === 'INPUT') return els;
    var el = form.ownerDocument.createElement('input');
    el.type = 'hidden';
    el.name = name;
    form.appendChild(el);
    return el;
  }

  function setStatus(form, key, fallback, suffix) {
    var el = form.ownerDocument.getElementById('pow-status');
    if (!el) return;
    var text = el.getAttribute(key) || fallback;
    el.textContent = suffix ? text + ' ' + suffix : text;
  }

  function setButtons(buttons, disabled) {
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = disabled;
  }

  function onSubmit(ev) {
    var form = ev.currentTarget;
    var token = form.getAttribute('data-pow-token');
    var diffAttr = form.getAttribute('data-pow-difficulty');
    if (!token || diffAttr === null) return;
    var difficulty = parseInt(diffAttr, 10);
    // Garbage difficulty: let the server answer rather than spin forever.
    if (!(difficulty >= 0 && difficulty <= MAX_DIFFICULTY)) return;
    var solution = hiddenInput(form, 'pow_solution');
    if (solution.value !== '') return; // solved: let it through
    ev.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return; // already solving

    var submitter = ev.submitter || null;
    var buttons = submitButtons(form);
    form.setAttribute('aria-busy', 'true');
    setButtons(buttons, true);
    setStatus(form, 'data-pow-working', 'Checking your browser\u2026', '0%');

    var solver = new Solver(token, difficulty);
    var expected = Math.pow(2, difficulty);

    function finish(found) {
      hiddenInput(form, 'pow_token').value = token;
      solution.value = found;
      setButtons(buttons, false);
      form.removeAttribute('aria-busy');
      setStatus(form, 'data-pow-done', 'Done, signing in\u2026');
      // requestSubmit fires `submit` again (this handler now lets it pass)
      // and keeps the clicked button's name/value in the form data.
      if (typeof form.requestSubmit === 'function') {
        try {
          if (submitter) form.requestSubmit(submitter);
          else form.requestSubmit();
          return;
        } catch (e) {
          // Fall through to the older path.
        }
      }
      // form.submit() skips the submit event and the clicked button's
      // name/value, so carry the latter in a hidden copy.
      if (submitter && submitter.name) {
        var copy = form.ownerDocument.createElement('input');
        copy.type = 'hidden';
        copy.name = submitter.name;
        copy.value = submitter.value;
        form.appendChild(copy);
      }
      form.submit();
    }

    function slice() {
      var deadline = now() + SLICE_MS;
      do {
        var found = solver.run(BATCH);
        if (found !== null) {
          finish(found);
          return;
        }
      } while (!solver.exhausted && now() < deadline);
      if (solver.exhausted) {
        setButtons(buttons, false);
        form.removeAttribute('aria-busy');
        setStatus(form, 'data-pow-failed', 'The check could not finish. Please reload the page.');
        return;
      }
      // Share of solvers that would have finished by now: a monotone,
      // honest progress figure for a memoryless search.
      var pct = Math.min(99, Math.floor(100 * (1 - Math.exp(-solver.tries / expected))));
      setStatus(form, 'data-pow-working', 'Checking your browser\u2026', pct + '%');
      setTimeout(slice, 0);
    }

    setTimeout(slice, 0); // let the disabled buttons and status paint first
  }

  function init(doc) {
    var forms = doc.querySelectorAll('form[data-pow-token]');
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener('submit', onSubmit);
    }
  }

  if (typeof document !== 'undefined' && document.querySelectorAll) {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', function () { init(document); });
    } else {
      init(document);
    }
  }

  if (typeof module !== 'undefined' && module.exports) {
    module.exports = { sha256hex: sha256hex, solve: solve, Solver: Solver };
  }
})();
