"""The shared files of the SCORM package: its SCORM 1.2 runtime script and the page styles.

``SCORM_API_JS`` runs in every lesson page (a SCO). It finds the LMS's ``API`` object
the way the SCORM 1.2 run-time environment prescribes (the page's parents, then its
opener), calls ``LMSInitialize``, and marks the lesson ``incomplete`` (``completed`` when
it has no quiz). On quiz submission it grades the multiple-choice questions in the
browser, reports ``cmi.core.score.raw`` (percent right) with ``score.min``/``score.max``
(0/100) and ``cmi.core.lesson_status`` (``passed`` from 70 %, else ``failed``), then
``LMSCommit`` and ``LMSFinish``. Open questions are not scored: their model answer is
shown. Without an LMS the page still works and says nothing was recorded.

Written as ES5 (no ``let``, arrows or classes): some LMSs still embed old browsers.
``LecternScorm`` exposes the pure parts (``grade``, ``submit``, ``findAPI``) for tests.
"""

from __future__ import annotations

MASTERY_PERCENT = 70

SCORM_API_JS = r"""/* Lectern SCORM 1.2 runtime: find the LMS API, report the quiz score. */
(function (root) {
  "use strict";
  var MASTERY = __MASTERY__;
  var api = null;
  var started = false;
  var finished = false;
  var startedAt = new Date().getTime();

  // SCORM 1.2 RTE: the LMS puts an object named API on a parent frame (or the opener).
  function scan(win) {
    for (var hops = 0; win && hops < 10; hops++) {
      try {
        if (win.API) { return win.API; }
      } catch (e) { return null; }  // a frame of another origin: not our LMS
      if (!win.parent || win.parent === win) { break; }
      win = win.parent;
    }
    return null;
  }

  function findAPI(win) {
    var found = scan(win);
    if (!found && win.opener) { found = scan(win.opener); }
    return found;
  }

  function call(name, a, b) {
    if (!api) { return ""; }
    try { return String(b === undefined ? api[name](a) : api[name](a, b)); }
    catch (e) { return ""; }
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  // CMITimespan: HHHH:MM:SS.SS
  function timespan(ms) {
    var cs = Math.max(0, Math.floor(ms / 10));
    var hours = Math.min(9999, Math.floor(cs / 360000));
    return two(hours) + ":" + two(Math.floor(cs / 6000) % 60) + ":" +
      two(Math.floor(cs / 100) % 60) + "." + two(cs % 100);
  }

  function start(hasQuiz) {
    if (started) { return api !== null; }
    started = true;
    api = findAPI(root);
    if (api && call("LMSInitialize", "") !== "true") { api = null; }
    if (!api) { return false; }
    var status = call("LMSGetValue", "cmi.core.lesson_status");
    if (!hasQuiz) {
      if (status !== "passed" && status !== "failed") {
        call("LMSSetValue", "cmi.core.lesson_status", "completed");
      }
      call("LMSCommit", "");
    } else if (status === "" || status === "not attempted") {
      call("LMSSetValue", "cmi.core.lesson_status", "incomplete");
      call("LMSCommit", "");
    }
    return true;
  }

  // key[i]: the index of the right option of question i; answers[i]: the chosen one or null
  function grade(key, answers) {
    var right = 0;
    for (var i = 0; i < key.length; i++) {
      var chosen = answers[i];
      if (chosen !== null && chosen !== undefined && Number(chosen) === Number(key[i])) {
        right++;
      }
    }
    var raw = key.length ? Math.round(100 * right / key.length) : 0;
    return { right: right, total: key.length, raw: raw, passed: raw >= MASTERY };
  }

  function finish() {
    if (!api || finished) { return; }
    finished = true;
    call("LMSSetValue", "cmi.core.session_time", timespan(new Date().getTime() - startedAt));
    call("LMSCommit", "");
    call("LMSFinish", "");
  }

  function submit(key, answers) {
    var result = grade(key, answers);
    start(true);
    if (api && !finished) {
      if (result.total) {
        call("LMSSetValue", "cmi.core.score.min", "0");
        call("LMSSetValue", "cmi.core.score.max", "100");
        call("LMSSetValue", "cmi.core.score.raw", String(result.raw));
        call("LMSSetValue", "cmi.core.lesson_status", result.passed ? "passed" : "failed");
      } else {
        call("LMSSetValue", "cmi.core.lesson_status", "completed");
      }
      finish();
      result.recorded = true;
    } else {
      result.recorded = false;
    }
    return result;
  }

  function show(node) { if (node) { node.hidden = false; } }

  function wire(doc) {
    var form = doc.getElementById("lectern-quiz");
    start(form !== null);
    if (root.addEventListener) {
      root.addEventListener("pagehide", finish);
      root.addEventListener("beforeunload", finish);
    }
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var key = [];
      var answers = [];
      var choices = form.querySelectorAll('fieldset[data-kind="choice"]');
      for (var i = 0; i < choices.length; i++) {
        var right = Number(choices[i].getAttribute("data-answer"));
        var picked = choices[i].querySelector("input:checked");
        var chosen = picked ? Number(picked.value) : null;
        key.push(right);
        answers.push(chosen);
        var options = choices[i].querySelectorAll(".option");
        for (var j = 0; j < options.length; j++) {
          if (j === right) { options[j].className += " right"; }
          if (j === chosen && chosen !== right) { options[j].className += " wrong"; }
          if (j === right || j === chosen) { show(options[j].querySelector(".feedback")); }
        }
      }
      var open = form.querySelectorAll(".model-answer");
      for (var k = 0; k < open.length; k++) { show(open[k]); }
      var result = submit(key, answers);
      var inputs = form.querySelectorAll("input, textarea, button");
      for (var n = 0; n < inputs.length; n++) { inputs[n].disabled = true; }
      var text = result.total
        ? result.right + " of " + result.total + " right (" + result.raw + "%): " +
          (result.passed ? "passed." : "not passed yet (" + MASTERY + "% needed).")
        : "Answers sent.";
      if (!result.recorded) { text += " No LMS was found, so nothing was recorded."; }
      var status = form.querySelector(".result");
      if (status) { status.textContent = text; }
    });
  }

  root.LecternScorm = { findAPI: findAPI, start: start, grade: grade, submit: submit,
    finish: finish, timespan: timespan, mastery: MASTERY };
  if (root.document) { wire(root.document); }
})(typeof window !== "undefined" ? window : this);
""".replace("__MASTERY__", str(MASTERY_PERCENT))

# a file rather than an inline script, so the pages' CSP needs no exception
DIAGRAMS_JS = """/* Draws the lesson's mermaid diagrams. */
if (window.mermaid) {
  window.mermaid.initialize({
    startOnLoad: true,
    securityLevel: "strict",
    theme: window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "default"
  });
}
"""

QUIZ_CSS = """
.course-line { color: var(--muted); margin: 0 0 1.5rem; font-size: 0.95rem; }
.quiz { margin-top: 3rem; border-top: 1px solid var(--rule); }
.question { border: 1px solid var(--rule); border-radius: 8px; margin: 1.25rem 0;
  padding: 0.75rem 1.25rem 1rem; }
.question legend { font-weight: 600; padding: 0 0.35rem; white-space: pre-wrap; }
.option { margin: 0.4rem 0; padding: 0.2rem 0.5rem; border-radius: 6px; }
.option label { display: flex; gap: 0.6rem; align-items: baseline; cursor: pointer; }
.option.right { background: rgba(26, 127, 55, 0.14); }
.option.wrong { background: rgba(207, 34, 46, 0.14); }
.feedback, .model-answer { color: var(--muted); margin: 0.3rem 0 0.2rem 1.9rem; }
.model-answer { margin-left: 0; }
textarea { width: 100%; font: inherit; padding: 0.5rem; border-radius: 6px;
  border: 1px solid var(--rule); background: var(--bg); color: var(--fg); }
button { font: inherit; padding: 0.5rem 1.2rem; border-radius: 6px; border: 0;
  background: var(--accent); color: var(--bg); cursor: pointer; }
button:disabled { opacity: 0.6; cursor: default; }
.result { font-weight: 600; }
"""
