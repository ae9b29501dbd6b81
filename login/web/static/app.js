/*
 * Астрал — единый личный кабинет: progressive enhancement for the login pages.
 * Every page works fully without this script; it only makes typing nicer.
 * Loaded with <script src="/static/app.js" defer> (no inline scripts: the CSP
 * forbids them).
 *
 * 1. Phone mask — input[type=tel][data-mask="ru-phone"]
 *    Formats the value as "+7 (910) 594-08-99" while typing. Accepts pasted or
 *    autofilled "8 910 594-08-99", "+7 910 …", "79105940899" and "9105940899".
 *    The server still normalises whatever it receives.
 *
 * 2. Password toggle — every .password > input[type=password]
 *    Adds a button (aria-label "Показать пароль" / "Скрыть пароль") that shows
 *    or hides the password. The button exists only when JS runs, so there is
 *    never a dead button.
 *
 * 3. Countdown — any element with data-countdown="SECONDS"
 *      <p class="countdown" data-countdown="60" data-countdown-reveal="resend"
 *         data-countdown-text="Отправить повторно через {n}" hidden></p>
 *      <a id="resend" href="…">Отправить код повторно</a>   (or a <form>/<button>)
 *    Render the countdown element with `hidden` and the target visible, so
 *    that without JS the target is simply there (the server enforces the
 *    delay anyway). With JS the script hides the target, shows the countdown
 *    element with the text ({n} is the remaining seconds; default text
 *    "Отправить повторно через {n}"), counts down once per second and at zero
 *    hides the countdown element and reveals the target.
 *    The target is the element whose id is data-countdown-reveal, or else the
 *    countdown element's next element sibling. The countdown element gets
 *    role="timer" (not announced every second by screen readers).
 *    Timing uses the wall clock, so a throttled background tab stays correct.
 */
(function () {
  'use strict';

  // ---------- 1. phone mask ----------

  var PREFIX = '+7 (';

  // nationalDigits returns up to 10 digits of a Russian number without the
  // country code, from anything a person may type or paste.
  function nationalDigits(value) {
    var v = String(value || '');
    var d = v.replace(/\D/g, '');
    if (/^\s*\+\s*7/.test(v)) {
      d = d.slice(1); // "+7 …": drop the country code
    } else if (d.length !== 10 && (d.charAt(0) === '7' || d.charAt(0) === '8')) {
      // "8 910 …", "7910…", or a first 8/7 typed into an empty field: a trunk
      // prefix or country code. Exactly 10 digits are a national number
      // already (e.g. "812 123-45-67").
      d = d.slice(1);
    }
    return d.slice(0, 10);
  }

  function formatPhone(n) {
    if (!n) return PREFIX;
    var s = PREFIX + n.slice(0, 3);
    if (n.length > 3) s += ') ' + n.slice(3, 6);
    if (n.length > 6) s += '-' + n.slice(6, 8);
    if (n.length > 8) s += '-' + n.slice(8, 10);
    return s;
  }

  // caretAfterDigit is the position in formatted just after the k-th
  // national digit (k = 0: just after the prefix).
  function caretAfterDigit(formatted, k) {
    if (k <= 0) return PREFIX.length;
    var seen = 0;
    for (var i = PREFIX.length; i < formatted.length; i++) {
      if (/\d/.test(formatted.charAt(i)) && ++seen === k) return i + 1;
    }
    return formatted.length;
  }

  // digitsBeforeCaret counts the national digits left of pos in value.
  function digitsBeforeCaret(value, pos) {
    var left = value.slice(0, pos);
    var n = left.replace(/\D/g, '').length;
    if (/^\s*\+\s*7/.test(value)) n -= 1;
    return Math.max(0, n);
  }

  function setValue(input, digits, caretDigits) {
    var f = formatPhone(digits);
    input.value = f;
    if (document.activeElement === input && typeof caretDigits === 'number') {
      var p = caretAfterDigit(f, caretDigits);
      try { input.setSelectionRange(p, p); } catch (e) { /* not supported */ }
    }
    input.setAttribute('data-digits', digits);
  }

  function initPhone(input) {
    // Normalise a prefilled value (e.g. "8 910 594 08 99" sent back by the server);
    // if autofocus came first, the caret goes after the number.
    if (input.value) { var d = nationalDigits(input.value); setValue(input, d, d.length); }
    else input.setAttribute('data-digits', '');

    input.addEventListener('focus', function () {
      if (!input.value) {
        setValue(input, '');
        var end = input.value.length;
        // Some browsers move the caret after focus; put it after the prefix,
        // unless keys typed meanwhile (input runs before timers) changed the value.
        setTimeout(function () {
          if (input.value !== PREFIX) return;
          try { input.setSelectionRange(end, end); } catch (e) { /* */ }
        }, 0);
      } else if (input.selectionStart === 0 && input.selectionEnd === 0) {
        // Focused with the caret before "+7 (" (autofocus on a number sent back
        // with an error): put it after the number, where the person goes on typing.
        var len = input.value.length;
        try { input.setSelectionRange(len, len); } catch (e) { /* */ }
      }
    });

    input.addEventListener('blur', function () {
      if (!nationalDigits(input.value)) input.value = ''; // placeholder back, `required` works
    });

    input.addEventListener('paste', function (ev) {
      var data = ev.clipboardData && ev.clipboardData.getData('text');
      if (!data) return;
      var pasted = data.replace(/\D/g, '');
      // A whole number replaces the field; a fragment is inserted normally
      // and reformatted by the input handler.
      if (pasted.length >= 10 || /^\s*\+\s*7/.test(data)) {
        ev.preventDefault();
        var d = nationalDigits(data);
        setValue(input, d, d.length);
      }
    });

    input.addEventListener('input', function (ev) {
      var value = input.value;
      var pos = input.selectionStart == null ? value.length : input.selectionStart;
      var before = input.getAttribute('data-digits') || '';
      var digits;
      var caret;
      if (value.indexOf(PREFIX) === 0 || /^\s*\+\s*7/.test(value)) {
        digits = value.replace(/\D/g, '').slice(1);
        caret = digitsBeforeCaret(value, pos);
      } else {
        // The prefix was edited away or the field was replaced (autofill).
        digits = nationalDigits(value);
        caret = digits.length;
      }
      // Backspace/Delete over a ")" "-" or " " removes the digit next to it.
      var type = ev.inputType || '';
      if (digits === before && type.indexOf('delete') === 0 && digits.length) {
        if (type === 'deleteContentBackward' && caret > 0) {
          digits = digits.slice(0, caret - 1) + digits.slice(caret);
          caret -= 1;
        } else if (type === 'deleteContentForward' && caret < digits.length) {
          digits = digits.slice(0, caret) + digits.slice(caret + 1);
        }
      }
      if (digits.length > 10) {
        if (digits.charAt(0) === '8' || digits.charAt(0) === '7') {
          // "+7 (" then "8 910 594 08 99" typed in full: the 8 was a trunk prefix.
          digits = digits.slice(1, 11);
          caret = Math.max(0, caret - 1);
        } else {
          digits = digits.slice(0, 10);
        }
      }
      if (!digits && type.indexOf('delete') === 0 && value.length < PREFIX.length) {
        // The person erased the prefix itself: let the field be empty.
        input.value = '';
        input.setAttribute('data-digits', '');
        return;
      }
      setValue(input, digits, Math.min(caret, digits.length));
    });
  }

  // ---------- 2. password toggle ----------

  var SVG = 'http://www.w3.org/2000/svg';

  function icon(paths) {
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '22');
    svg.setAttribute('height', '22');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    for (var i = 0; i < paths.length; i++) {
      var p = document.createElementNS(SVG, 'path');
      p.setAttribute('d', paths[i]);
      p.setAttribute('fill', 'none');
      p.setAttribute('stroke', 'currentColor');
      p.setAttribute('stroke-width', '2');
      p.setAttribute('stroke-linecap', 'round');
      p.setAttribute('stroke-linejoin', 'round');
      svg.appendChild(p);
    }
    return svg;
  }

  var EYE = ['M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z', 'M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z'];
  var EYE_OFF = ['M3 3l18 18', 'M10.6 5.1A10.6 10.6 0 0 1 12 5c6.4 0 10 7 10 7a17 17 0 0 1-3.2 4.1',
    'M6.6 6.6C3.8 8.4 2 12 2 12s3.6 7 10 7c1.9 0 3.5-.6 4.9-1.4', 'M9.9 9.9a3 3 0 0 0 4.2 4.2'];

  function initPassword(input) {
    var wrap = input.parentNode;
    if (!wrap || !wrap.classList || !wrap.classList.contains('password')) return;
    if (wrap.querySelector('.password-toggle')) return;
    var btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'password-toggle';
    if (input.id) btn.setAttribute('aria-controls', input.id);

    function render(shown) {
      btn.setAttribute('aria-label', shown ? 'Скрыть пароль' : 'Показать пароль');
      btn.setAttribute('aria-pressed', shown ? 'true' : 'false');
      btn.title = shown ? 'Скрыть пароль' : 'Показать пароль';
      while (btn.firstChild) btn.removeChild(btn.firstChild);
      btn.appendChild(icon(shown ? EYE_OFF : EYE));
    }

    btn.addEventListener('click', function () {
      var shown = input.type === 'password';
      input.type = shown ? 'text' : 'password';
      render(shown);
      input.focus();
    });
    // Never submit a visible password field type (some password managers care).
    if (input.form) {
      input.form.addEventListener('submit', function () {
        if (input.type !== 'password') { input.type = 'password'; render(false); }
      });
    }
    render(false);
    wrap.appendChild(btn);
    wrap.classList.add('has-toggle');
  }

  // ---------- 3. countdown ----------

  function initCountdown(el) {
    var seconds = parseInt(el.getAttribute('data-countdown'), 10);
    if (!(seconds >= 0)) return;
    var text = el.getAttribute('data-countdown-text') || 'Отправить повторно через {n}';
    var id = el.getAttribute('data-countdown-reveal');
    var target = id ? document.getElementById(id) : el.nextElementSibling;
    var end = Date.now() + seconds * 1000;
    var timer = null;

    function tick() {
      var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      if (left <= 0) {
        if (timer) clearInterval(timer);
        el.hidden = true;
        if (target) target.hidden = false;
        el.dispatchEvent(new CustomEvent('countdown:done', { bubbles: true }));
        return;
      }
      el.textContent = text.replace('{n}', String(left));
    }

    el.setAttribute('role', 'timer');
    if (seconds > 0) {
      if (target) target.hidden = true;
      el.hidden = false;
      timer = setInterval(tick, 1000);
    }
    tick();
  }

  // ---------- start ----------

  function each(selector, fn) {
    var list = document.querySelectorAll(selector);
    for (var i = 0; i < list.length; i++) fn(list[i]);
  }

  function init() {
    each('input[type="tel"][data-mask="ru-phone"]', initPhone);
    each('.password > input[type="password"]', initPassword);
    each('[data-countdown]', initCountdown);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();

  // Exposed for tests and for pages that add fields later.
  window.AstralUI = { nationalDigits: nationalDigits, formatPhone: formatPhone, init: init };
})();
