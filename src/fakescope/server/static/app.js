/* fakescope web page: upload, poll, show the verdict. Plain JS, no dependencies.
 * Every piece of server data reaches the DOM through textContent / attributes,
 * never through innerHTML. */
(function () {
  "use strict";

  var TOKEN_KEY = "fakescope.token";
  var POLL_MS = 700;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var DEFAULT_THRESHOLD = 0.5;
  var DEFAULT_BAND = 0.1; // `scan --uncertain-band` default

  var STATUS_PHRASES = {
    no_face: "No face was found, so there is nothing to judge.",
    face_too_small: "The faces are too small to judge reliably.",
    undecodable: "The file could not be decoded (damaged or truncated?).",
    unsupported: "This kind of file is not supported.",
    too_large: "The file is too large to analyse.",
    error: "The analysis failed with an internal error."
  };

  var $ = function (id) { return document.getElementById(id); };
  var el = {};
  var pollTimer = null;
  var pollGeneration = 0;
  var currentId = null;
  var uploadXhr = null;
  var shownResult = null; // the result whose face cards are on screen
  var shownWidth = 0; // el.faces width they were drawn for

  // ---------------------------------------------------------------- helpers

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function pct(p) {
    return Math.round(p * 100) + "%";
  }

  function isNum(x) {
    return typeof x === "number" && isFinite(x);
  }

  function fmtBytes(n) {
    if (!isNum(n)) return "";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(0) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function fmtDate(value) {
    if (value === null || value === undefined || value === "") return "";
    var d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toLocaleString();
  }

  function fmtSeconds(s) {
    if (!isNum(s)) return "";
    return s < 10 ? s.toFixed(1) + " s" : Math.round(s) + " s";
  }

  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* private mode: keep going without persistence */ }
  }

  /* Same-origin URL of a server image, with ?token= when a token is set (an <img> cannot
   * send the Authorization header). Anything not on this origin is refused. */
  function mediaUrl(raw) {
    if (typeof raw !== "string" || raw === "") return null;
    var url;
    try { url = new URL(raw, window.location.href); } catch (e) { return null; }
    if (url.origin !== window.location.origin) return null;
    var token = getToken();
    if (token) url.searchParams.set("token", token);
    return url.pathname + url.search;
  }

  // --------------------------------------------------------------- messages

  function showMessage(text, kind) {
    clear(el.messages);
    if (!text) return;
    var p = make("p", "message message-" + (kind || "error"), text);
    var close = make("button", "link-button dismiss", "Dismiss");
    close.type = "button";
    close.addEventListener("click", function () { clear(el.messages); });
    p.appendChild(close);
    el.messages.appendChild(p);
  }

  function detailOf(body) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail) && body.detail.length && body.detail[0].msg) {
      return String(body.detail[0].msg);
    }
    return "";
  }

  function errorText(status, body, retryAfter) {
    var detail = detailOf(body);
    var base;
    switch (status) {
      case 0: base = "Could not reach the server. Check the connection and try again."; break;
      case 400: base = "The server could not use this upload."; break;
      case 401: base = "This server needs an access token. Enter it above and try again."; break;
      case 404: base = "This scan does not exist (it may have been deleted)."; break;
      case 413: base = "The file is too large for this server."; break;
      case 415: base = "This file type is not supported. Upload a video (MP4, MOV, WebM…) or a photo (JPEG, PNG, WebP…)."; break;
      case 422: base = "The server could not use this request."; break;
      case 429:
        base = "Too many requests right now. Please wait" +
          (retryAfter ? " " + retryAfter + " s" : " a moment") + " and try again.";
        break;
      default: base = "The server answered with an error (HTTP " + status + ").";
    }
    // the server's own words for a refused request; never the text of a server error
    return detail && status >= 400 && status < 500 ? base + " (" + detail + ")" : base;
  }

  function handleError(status, body, retryAfter) {
    if (status === 401) showTokenForm(true);
    showMessage(errorText(status, body, retryAfter), "error");
  }

  // --------------------------------------------------------------------- API

  function api(method, path) {
    var headers = { Accept: "application/json" };
    var token = getToken();
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path, { method: method, headers: headers, cache: "no-store" }).then(
      function (res) {
        if (res.status === 204) return { ok: res.ok, status: res.status, body: null };
        return res.json().catch(function () { return null; }).then(function (body) {
          return {
            ok: res.ok, status: res.status, body: body,
            retryAfter: res.headers.get("Retry-After")
          };
        });
      },
      function () { return { ok: false, status: 0, body: null }; }
    );
  }

  // ------------------------------------------------------------------- token

  function showTokenForm(needed) {
    el.tokenForm.hidden = false;
    el.tokenToggle.setAttribute("aria-expanded", "true");
    el.tokenHint.textContent = needed
      ? "This server needs an access token. It is kept in this browser only."
      : "The token is kept in this browser only.";
    el.tokenInput.value = getToken();
    if (needed) el.tokenInput.focus();
  }

  function hideTokenForm() {
    el.tokenForm.hidden = true;
    el.tokenToggle.setAttribute("aria-expanded", "false");
  }

  // ------------------------------------------------------------------ upload

  function upload(file) {
    if (!file) return;
    if (file.size === 0) {
      clearResult();
      showMessage("This file is empty.", "error");
      return;
    }
    if (uploadXhr) uploadXhr.abort();
    showMessage("");
    clearResult(); // whatever this upload brings, the previous verdict is no longer on screen
    var form = new FormData();
    form.append("file", file, file.name);
    var reference = el.referenceBlock.hidden ? "" : el.referenceInput.value.trim();
    if (reference) form.append("reference", reference);
    var xhr = new XMLHttpRequest();
    uploadXhr = xhr;
    xhr.open("POST", "/api/scans");
    xhr.setRequestHeader("Accept", "application/json");
    var token = getToken();
    if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);
    el.uploadStatus.hidden = false;
    el.uploadProgress.value = 0;
    el.uploadLabel.textContent = "Uploading " + file.name + " (" + fmtBytes(file.size) + ")…";
    xhr.upload.addEventListener("progress", function (ev) {
      if (ev.lengthComputable && ev.total > 0) {
        el.uploadProgress.value = ev.loaded / ev.total;
        el.uploadLabel.textContent = "Uploading " + file.name + " — " + pct(ev.loaded / ev.total);
      }
    });
    xhr.addEventListener("load", function () {
      uploadXhr = null;
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      el.uploadStatus.hidden = true;
      if (xhr.status === 202 || xhr.status === 200 || xhr.status === 201) {
        if (body && typeof body.id === "string") {
          el.uploadProgress.value = 1;
          refreshRecent();
          var hash = "#/scans/" + encodeURIComponent(body.id);
          if (window.location.hash === hash) route();
          else window.location.hash = hash;
          return;
        }
        showMessage("The server accepted the file but did not return a scan id.", "error");
        return;
      }
      handleError(xhr.status, body, xhr.getResponseHeader("Retry-After"));
    });
    xhr.addEventListener("error", function () {
      uploadXhr = null;
      el.uploadStatus.hidden = true;
      handleError(0, null);
    });
    xhr.addEventListener("abort", function () { el.uploadStatus.hidden = true; });
    xhr.send(form);
  }

  // ----------------------------------------------------------------- polling

  function stopPolling() {
    pollGeneration += 1;
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function openScan(id) {
    stopPolling();
    currentId = id;
    var generation = pollGeneration;
    clear(el.faces);
    el.facesTitle.hidden = true;
    el.result.hidden = true;
    setScanProgress("queued", 0);

    function tick() {
      api("GET", "/api/scans/" + encodeURIComponent(id)).then(function (res) {
        if (generation !== pollGeneration) return;
        if (!res.ok) {
          el.scanStatus.hidden = true;
          if (res.status === 429) {  // back off and keep polling
            pollTimer = setTimeout(tick, POLL_MS * 4);
            return;
          }
          handleError(res.status, res.body, res.retryAfter);
          return;
        }
        var scan = res.body || {};
        if (scan.status === "done" || scan.status === "failed") {
          el.scanStatus.hidden = true;
          renderScan(scan);
          refreshRecent();
          return;
        }
        setScanProgress(scan.status, scan.progress);
        pollTimer = setTimeout(tick, POLL_MS);
      });
    }
    tick();
  }

  function setScanProgress(status, progress) {
    el.scanStatus.hidden = false;
    if (status === "running") {
      var p = isNum(progress) ? Math.max(0, Math.min(1, progress)) : 0;
      el.scanProgress.value = p;
      el.scanLabel.textContent = "Analysing — " + pct(p);
    } else {
      el.scanProgress.removeAttribute("value"); // indeterminate
      el.scanLabel.textContent = "Waiting in queue…";
    }
  }

  // ------------------------------------------------------------------ result

  /* The overall verdict's labels. Every percentage on this page is a probability of "fake"
   * (for the headline: that the media is not authentic), always with the words that say so. */
  var OVERALL = {
    manipulated: { title: "Manipulated", tone: "fake",
      explain: "A face looks swapped or re-enacted." },
    generated: { title: "Generated", tone: "fake",
      explain: "The whole image looks machine-made (by a GAN or a diffusion model)." },
    authentic: { title: "Authentic", tone: "real",
      explain: "Both checks answered: no face looks swapped or re-enacted, and the image " +
        "does not look generated." },
    uncertain: { title: "Uncertain", tone: "neutral",
      explain: "No confident answer: a score is too close to call, or one of the checks " +
        "could not run. Treat this media as unverified." },
    no_verdict: { title: "No verdict", tone: "neutral",
      explain: "Nothing in this file could be judged." }
  };

  var STATUS_SHORT = {
    no_face: "no face",
    face_too_small: "faces too small",
    undecodable: "unreadable file",
    unsupported: "unsupported file",
    too_large: "file too large",
    error: "analysis failed"
  };

  var TECHNICAL = /internal error|Error:|Exception|Traceback/;

  function notAuthentic(p) {
    return pct(p) + " likely not authentic";
  }

  function addMeta(dl, term, value) {
    if (value === null || value === undefined || value === "") return;
    dl.appendChild(make("dt", null, term));
    dl.appendChild(make("dd", null, value));
  }

  function mediaSummary(media) {
    if (!media) return "";
    var parts = [];
    parts.push(media.kind === "image" ? "Photo" : "Video");
    if (media.format) parts.push(String(media.format).toUpperCase());
    if (isNum(media.width) && isNum(media.height)) parts.push(media.width + "×" + media.height);
    if (media.codec) parts.push(String(media.codec));
    if (isNum(media.duration_s)) parts.push(fmtSeconds(media.duration_s));
    if (isNum(media.fps)) parts.push(Math.round(media.fps * 100) / 100 + " fps");
    return parts.join(" · ");
  }

  function parseThreshold(reason) {
    var m = /threshold\s+([0-9]*\.?[0-9]+)/i.exec(reason || "");
    var t = m ? parseFloat(m[1]) : NaN;
    return t > 0 && t < 1 ? t : DEFAULT_THRESHOLD;
  }

  // The threshold and uncertain band the labels were decided by: `result.decision` when the
  // server sent it, else the threshold named in `reason` and the default band (older results).
  function decisionOf(result) {
    var d = result && result.decision;
    var t = d && isNum(d.threshold) && d.threshold > 0 && d.threshold < 1 ? d.threshold
      : parseThreshold(result && result.reason);
    var band = d && isNum(d.uncertain_band) && d.uncertain_band >= 0 && d.uncertain_band < 0.5
      ? d.uncertain_band : DEFAULT_BAND;
    return { threshold: t, band: band };
  }

  function fmtNum(v) {
    return String(Math.round(v * 1000) / 1000);
  }

  // Detected faces that were not scored, by reason ({"noise": 2, "unalignable": 1}).
  function droppedSummary(dropped) {
    if (!dropped || typeof dropped !== "object") return "";
    var parts = [];
    Object.keys(dropped).sort().forEach(function (k) {
      if (isNum(dropped[k]) && dropped[k] > 0) parts.push(dropped[k] + " " + k.replace(/_/g, " "));
    });
    return parts.join(", ");
  }

  function decisionSummary(d) {
    if (!d || !isNum(d.threshold)) return "";
    var text = "threshold " + d.threshold.toFixed(2);
    if (isNum(d.uncertain_band) && d.uncertain_band > 0) {
      text += ", uncertain within ±" + d.uncertain_band.toFixed(2);
    }
    var rule = String(d.rule || "");
    if (/cost-minimising/i.test(rule)) {
      var costs = ["cost-minimising"];
      if (isNum(d.cost_miss)) costs.push("miss cost " + fmtNum(d.cost_miss));
      if (isNum(d.cost_false_alarm)) costs.push("false-alarm cost " + fmtNum(d.cost_false_alarm));
      if (isNum(d.prior_fake)) costs.push("prior " + fmtNum(d.prior_fake));
      text += " (" + costs.join(", ") + ")";
    } else if (rule) {
      text += " (" + rule.replace(/^fixed threshold /, "fixed, ") + ")";
    }
    if (d.calibration_level) text += "; calibration level: " + String(d.calibration_level);
    return text;
  }

  function modelSummary(model) {
    if (!model || typeof model !== "object") return "";
    var m = String(model.name || "unknown");
    if (model.version) m += " v" + model.version;
    if (model.sha256) m += " (sha256 " + String(model.sha256).slice(0, 16) + "…)";
    if (model.resolved_from) {  // an int8 weight's float twin ran (see README, "int8 or float")
      m += ", in place of " + String(model.resolved_from);
      if (model.resolution) m += ": " + String(model.resolution);
    }
    return m;
  }

  function timingsSummary(t) {
    if (!t || typeof t !== "object") return "";
    var parts = [];
    Object.keys(t).forEach(function (k) {
      if (k !== "total" && isNum(t[k]) && t[k] >= 1) parts.push(k + " " + Math.round(t[k]) + " ms");
    });
    var total = isNum(t.total) ? (t.total / 1000).toFixed(2) + " s" : "";
    return total + (parts.length ? (total ? " (" : "") + parts.join(", ") + (total ? ")" : "") : "");
  }

  /* The headline: the overall verdict's label, and (unless there is no verdict) how likely
   * the media is not authentic. Its colour says the same: red for manipulated/generated,
   * green only for authentic, grey for uncertain and no verdict. */
  function setHeadline(label, tone, title, probability) {
    el.verdictCard.className = "panel verdict-card verdict-" + label + " tone-" + tone;
    el.verdictCard.setAttribute("data-verdict", label);
    clear(el.verdict);
    el.verdict.appendChild(make("span", "verdict-label", title));
    if (probability !== null) {
      el.verdict.appendChild(make("span", "verdict-prob", notAuthentic(probability)));
    }
  }

  /* Hide the verdict on screen (a new upload starts, or the scan is gone): a rejected upload
   * must never leave the previous file's verdict looking like its own. */
  function clearResult() {
    stopPolling();
    currentId = null;
    shownResult = null;
    el.result.hidden = true;
    el.result.removeAttribute("data-scan-id");
    el.scanStatus.hidden = true;
    clear(el.verdict);
    clear(el.faces);
    el.verdictCard.className = "panel verdict-card";
    el.verdictCard.removeAttribute("data-verdict");
    if (/^#\/scans\//.test(window.location.hash)) {
      history.replaceState(null, "", window.location.pathname + window.location.search + "#/");
    }
    markCurrent();
  }

  function renderScan(scan) {
    el.result.hidden = false;
    el.result.setAttribute("data-scan-id", scan.id || "");
    var result = scan.result;
    var media = result && result.media;
    el.resultFile.textContent = (scan.filename || (result && result.path) || "") +
      (media ? " — " + (media.kind === "image" ? "photo" : "video" +
        (isNum(media.duration_s) ? ", " + fmtSeconds(media.duration_s) : "")) : "");
    clear(el.meta);
    clear(el.synthMeta);
    clear(el.reasons);
    clear(el.notes);
    el.reason.textContent = "";
    el.technical.open = false;
    if (scan.status === "failed" || !result) {
      setHeadline("failed", "neutral", "Scan failed", null);
      el.explain.textContent = failedText(scan.error);
      addMeta(el.meta, "Error", scan.error || "");
    } else {
      var overall = result.verdict && typeof result.verdict === "object" ? result.verdict : {};
      var label = OVERALL.hasOwnProperty(overall.label) ? overall.label : "no_verdict";
      var p = isNum(overall.probability) ? overall.probability : null;
      setHeadline(label, OVERALL[label].tone, OVERALL[label].title,
        label === "no_verdict" ? null : p);
      el.explain.textContent = label === "no_verdict"
        ? (STATUS_PHRASES[result.status] || OVERALL.no_verdict.explain)
        : OVERALL[label].explain;
      var reasons = Array.isArray(overall.reasons) ? overall.reasons : [];
      reasons.forEach(function (r) {
        var text = TECHNICAL.test(String(r))
          ? "One of the checks failed on this file (see Technical details)." : String(r);
        el.reasons.appendChild(make("li", null, text));
      });
      if (!result.verdict) {
        el.reason.textContent = "This scan was made by an older version of fakescope, " +
          "without an overall verdict: upload the file again.";
      }
      var notes = Array.isArray(result.notes) ? result.notes.map(String) : [];
      notes.forEach(function (n) { el.notes.appendChild(make("li", null, plainNote(n))); });

      addMeta(el.meta, "Overall verdict", overall.headline ? String(overall.headline) : "");
      addMeta(el.meta, "Decided by", overall.decided_by === "face" && isNum(overall.face)
        ? "face " + overall.face : overall.decided_by === "whole_image" ? "the whole image" : "");
      addMeta(el.meta, "Scan status", String(result.status || ""));
      addMeta(el.meta, "Face check", result.reason ? String(result.reason) : "");
      addMeta(el.meta, "Model", modelSummary(result.model));
      addMeta(el.meta, "Media", mediaSummary(result.media));
      if (result.status === "ok") addMeta(el.meta, "Decision", decisionSummary(result.decision));
      if (result.status === "ok" && result.decision && result.decision.aggregation) {
        addMeta(el.meta, "How faces combine", String(result.decision.aggregation));
      }
      addMeta(el.meta, "Faces not scored", droppedSummary(result.faces_dropped));
      addMeta(el.meta, "Analysis time", timingsSummary(result.timings_ms));
      addMeta(el.meta, "Notes", notes.join(" · "));
    }
    addMeta(el.meta, "Checked against", scan.reference ? String(scan.reference) : "");
    addMeta(el.meta, "Scanned", fmtDate(scan.updated_at || scan.created_at));
    addMeta(el.meta, "Scan id", scan.id ? String(scan.id) : "");
    renderFaceQuestion(result);
    renderSynthesis(result);
    renderProvenance(scan.provenance);
    renderFaces(result);
    el.verdict.focus({ preventScroll: true });
    var top = el.result.getBoundingClientRect().top;
    if (top > window.innerHeight * 0.6 || top < 0) el.result.scrollIntoView({ block: "start" });
  }

  var STAGE_NAMES = {
    attribution: "guess of the manipulation method",
    evidence: "other evidence",
    identity: "identity check",
    heatmaps: "heatmaps",
    thumbnails: "face previews"
  };

  /* A note on what the result lacks, in plain words (the scanner's own wording, with the
   * exception text, stays under Technical details). */
  function plainNote(note) {
    var m = /^(\w+) failed and were left out: /.exec(note);
    if (m) {
      return "The " + (STAGE_NAMES[m[1]] || m[1]) + " could not be added to this result; " +
        "the verdict does not depend on it.";
    }
    return TECHNICAL.test(note)
      ? "Part of the analysis could not be added to this result (see Technical details)." : note;
  }

  function failedText(error) {
    var e = String(error || "");
    if (/longer than|took too long/i.test(e)) {
      return "The analysis took longer than this server allows and was stopped. A shorter " +
        "clip or a smaller file may work.";
    }
    if (/memory/i.test(e)) {
      return "The analysis needed more memory than this server allows and was stopped. A " +
        "smaller file may work.";
    }
    if (/worker died/i.test(e)) {
      return "The analysis crashed on this file several times, so it was given up.";
    }
    return "The server could not analyse this file.";
  }

  /* One of the two questions under the headline: `tone` colours it, `answer` says it in
   * words, `probLine` gives its own probability of fake (or nothing when not answered). */
  function setQuestion(card, answerEl, explainEl, tone, answer, probLine, explain) {
    card.className = card.className.replace(/\s*tone-\w+/g, "") + " tone-" + tone;
    clear(answerEl);
    answerEl.appendChild(make("span", "answer-word", answer));
    if (probLine) answerEl.appendChild(make("span", "answer-prob", probLine));
    explainEl.textContent = explain;
  }

  function toneOf(label) {
    return label === "fake" ? "fake" : label === "real" ? "real" : "neutral";
  }

  /* "Was a face swapped or re-enacted?": the verdict's own label and fake_probability (the
   * most suspicious face decides). */
  function renderFaceQuestion(result) {
    var card = el.faceQuestion;
    card.hidden = !result;
    if (!result) return;
    var p = result.fake_probability;
    var faces = Array.isArray(result.faces) ? result.faces : [];
    if (result.status !== "ok" || !isNum(p)) {
      setQuestion(card, el.faceAnswer, el.faceExplain, "neutral", "Not answered", "",
        STATUS_PHRASES[result.status] || "The face check could not decide on this file.");
      return;
    }
    var worst = faces.reduce(function (best, f, k) {
      return best === null || (f.fake_probability || 0) > (faces[best].fake_probability || 0) ? k : best;
    }, null);
    var which = faces.length > 1 && worst !== null
      ? "The most suspicious of " + faces.length + " faces (face " + (worst + 1) + ") decides. "
      : "";
    var answer = result.label === "fake" ? "Yes, likely"
      : result.label === "real" ? "No sign of it" : "Too close to call";
    setQuestion(card, el.faceAnswer, el.faceExplain, toneOf(result.label), answer,
      pct(p) + " probability a face was manipulated",
      which + "A face swap replaces a person's face; a re-enactment makes a real face say or " +
      "do something else.");
  }

  var SYNTH_STATUS = {
    unsupported: "The whole-image check could not use this file.",
    undecodable: "The file could not be decoded, so the whole image was not checked.",
    too_large: "The file is too large to analyse.",
    error: "The whole-image check failed on this file."
  };

  /* "Was the whole image generated?": the synthesis block (its own model and probability). */
  function renderSynthesis(result) {
    var s = result && result.synthesis;
    var card = el.synthesis;
    card.hidden = !result;
    if (!result) return;
    if (!s || typeof s !== "object") {
      setQuestion(card, el.synthVerdict, el.synthExplain, "neutral", "Not checked", "",
        "This server does not run a whole-image synthesis detector.");
      return;
    }
    var p = s.fake_probability;
    var frames = isNum(s.frames) ? s.frames : 0;
    var from = result.media && result.media.kind === "image" ? "the photo"
      : frames + (frames === 1 ? " sampled frame" : " sampled frames");
    if (s.status === "ok" && isNum(p)) {
      var answer = s.label === "fake" ? "Yes, likely"
        : s.label === "real" ? "No sign of it" : "Too close to call";
      setQuestion(card, el.synthVerdict, el.synthExplain, toneOf(s.label), answer,
        pct(p) + " probability the whole image was generated",
        "Judged from " + from + ": was the whole picture made by an image generator (a GAN " +
        "or a diffusion model) rather than a camera?");
      var family = familyText(s.family);
      if (family) el.synthVerdict.appendChild(make("span", "answer-family", family));
    } else {
      setQuestion(card, el.synthVerdict, el.synthExplain, "neutral", "Not answered", "",
        SYNTH_STATUS[s.status] || STATUS_PHRASES[s.status] ||
        "The whole-image check could not decide on this file.");
    }
    addMeta(el.synthMeta, "Result", s.reason ? String(s.reason) : "");
    addMeta(el.synthMeta, "Generator family", familyText(s.family));
    addMeta(el.synthMeta, "Model", modelSummary(s.model));
  }

  var FAMILY_NAMES = { gan: "a GAN", diffusion: "a diffusion model" };

  /* The synthesis block's "family" (present only when the image is judged generated, by a
   * detector that names families): which kind of generator it most resembles. */
  function familyText(f) {
    if (!f || typeof f !== "object" || !isNum(f.confidence)) return "";
    if (f.name === "unknown") {
      return "Generator family unclear (neither a GAN nor a diffusion model stands out)";
    }
    var name = FAMILY_NAMES[f.name];
    // no percentage: every one on the page is a probability of fake or not authentic
    return name ? "Most like " + name : "";
  }

  function renderProvenance(prov) {
    var body = el.provBody;
    clear(body);
    el.provenance.className = "panel question provenance";
    if (!prov || typeof prov !== "object") {
      body.appendChild(make("p", null, "Content credentials were not checked."));
      return;
    }
    var status = prov.status;
    el.provenance.classList.add("prov-" + String(status));
    if (status === "absent") {
      body.appendChild(make("p", "prov-status", "No content credentials"));
      body.appendChild(make("p", "hint", "The file carries no C2PA manifest. Most media has none; " +
        "this says nothing either way about manipulation."));
      return;
    }
    if (status === "valid" || status === "invalid") {
      body.appendChild(make("p", "prov-status", status === "valid"
        ? "Content credentials present — signature valid"
        : "Content credentials present — signature does NOT validate"));
      var dl = make("dl", "meta");
      addMeta(dl, "Signed by", prov.signer || "unknown");
      addMeta(dl, "Tool", prov.claim_generator || "unknown");
      addMeta(dl, "Signed on", fmtDate(prov.signed_at) || "unknown");
      addMeta(dl, "Title", prov.title);
      addMeta(dl, "Signature", status === "valid" ? "validates" : "does not validate");
      addMeta(dl, "Trust", prov.trusted === true ? "signer is on the trust list"
        : prov.trusted === false ? "signer is not on the trust list" : "not checked");
      body.appendChild(dl);
      var actions = Array.isArray(prov.actions) ? prov.actions : [];
      if (actions.length) {
        body.appendChild(make("h4", null, "Recorded edits"));
        var ul = make("ul", "plain-list");
        actions.slice(0, 20).forEach(function (a) {
          var text = typeof a === "string" ? a
            : [a.action, a.software_agent || a.softwareAgent, a.when].filter(Boolean).join(" · ");
          ul.appendChild(make("li", null, text || JSON.stringify(a)));
        });
        body.appendChild(ul);
      }
      var errs = Array.isArray(prov.validation_errors) ? prov.validation_errors : [];
      if (errs.length) {
        body.appendChild(make("h4", null, "Validation problems"));
        var eul = make("ul", "plain-list");
        errs.slice(0, 20).forEach(function (e) {
          eul.appendChild(make("li", null, typeof e === "string" ? e : JSON.stringify(e)));
        });
        body.appendChild(eul);
      }
      return;
    }
    var title = status === "unavailable"
      ? "Content credentials could not be checked on this server"
      : "Content credentials could not be read";
    body.appendChild(make("p", "prov-status", title));
    if (prov.reason) body.appendChild(make("p", "hint", prov.reason));
  }

  function renderFaces(result) {
    clear(el.faces);
    shownResult = result || null;
    shownWidth = el.faces.clientWidth;
    var faces = result && Array.isArray(result.faces) ? result.faces : [];
    el.facesTitle.hidden = faces.length === 0;
    if (!faces.length) return;
    el.facesTitle.textContent = faces.length === 1 ? "1 face" : faces.length + " faces";
    var decision = decisionOf(result);
    var duration = result.media && isNum(result.media.duration_s) ? result.media.duration_s : null;
    faces.forEach(function (face, i) {
      el.faces.appendChild(faceCard(face, i, decision, duration, result.media));
    });
  }

  function heatmapLegend() {
    var legend = make("div", "heat-legend");
    legend.setAttribute("aria-hidden", "true");
    legend.appendChild(make("span", "heat-legend-end", "no colour: no influence"));
    legend.appendChild(make("span", "heat-legend-bar"));
    legend.appendChild(make("span", "heat-legend-end", "red: strongest influence"));
    return legend;
  }

  function faceCard(face, i, decision, duration, media) {
    var threshold = decision.threshold, band = decision.band;
    var card = make("article", "panel face-card");
    var label = face.label === "fake" ? "Likely manipulated"
      : face.label === "real" ? "No sign of manipulation" : "Too close to call";
    card.classList.add("face-" + (face.label || "uncertain"));
    card.classList.add("tone-" + toneOf(face.label));
    var head = make("div", "face-head");
    var thumbUrl = mediaUrl(face.thumbnail);
    if (thumbUrl) {
      var img = make("img", "thumbnail");
      img.alt = "Face " + (i + 1);
      img.src = thumbUrl;
      img.width = 96;
      img.height = 96;
      head.appendChild(img);
    } else {
      head.appendChild(make("div", "thumbnail-missing", "no preview"));
    }
    var info = make("div", "face-info");
    info.appendChild(make("h3", null, "Face " + (i + 1)));
    info.appendChild(make("p", "face-label", label));
    if (isNum(face.fake_probability)) {
      info.appendChild(make("p", "face-prob", pct(face.fake_probability) + " probability this face was manipulated"));
    }
    var frames = Array.isArray(face.frames) ? face.frames : [];
    var isVideo = !media || media.kind !== "image";
    if (frames.length) {
      info.appendChild(make("p", "hint", frames.length + (frames.length === 1 ? " frame" : " frames") +
        " scored" + (isVideo && frames.length > 1 ? ", from " + fmtSeconds(frames[0].time_s) + " to " +
        fmtSeconds(frames[frames.length - 1].time_s) : "")));
    }
    var identity = face.identity;
    if (identity && isNum(identity.person)) {
      var who = "Person " + (identity.person + 1);
      if (identity.name) {
        who += ": looks like " + identity.name +
          (isNum(identity.same_person_probability) ? " (" + pct(identity.same_person_probability) + " probability it is the same person)" : "");
      } else if (identity.closest) {
        who += ": not anyone in the gallery";
      }
      info.appendChild(make("p", "face-identity", who));
    }
    var attribution = face.attribution;
    if (attribution && attribution.family) {
      info.appendChild(make("p", "face-attribution", "Resembles " + attribution.family + " (" +
        attribution.method + ")"));
    }
    head.appendChild(info);
    card.appendChild(head);
    var evidence = Array.isArray(face.evidence) ? face.evidence : [];
    if (evidence.length) {
      var ev = make("div", "face-evidence");
      ev.appendChild(make("h4", null, "Other evidence"));
      evidence.forEach(function (e) {
        var line = e.name + ": " + (isNum(e.fake_probability)
          ? pct(e.fake_probability) + " probability of fake" : "no score") +
          (e.summary ? " \u2014 " + e.summary : "");
        ev.appendChild(make("p", "evidence-line", line));
        var findings = Array.isArray(e.findings) ? e.findings : [];
        if (findings.length) {
          var ul = make("ul", "evidence-findings");
          findings.slice(0, 3).forEach(function (f) { ul.appendChild(make("li", null, f)); });
          ev.appendChild(ul);
        }
      });
      card.appendChild(ev);
    }

    if (frames.length > 1 || (frames.length === 1 && isVideo)) {
      var fig = make("figure", "timeline-figure");
      fig.appendChild(timeline(frames, decision, duration, i, face.fake_probability));
      var lo = Math.max(0, threshold - band), hi = Math.min(1, threshold + band);
      fig.appendChild(make("figcaption", "hint", "Dots: what each sampled frame alone says " +
        "(probability of manipulation). Solid line: this face's probability, " +
        (isNum(face.fake_probability) ? pct(face.fake_probability) + ", " : "") +
        "from all its frames together, on the same scale. Dashed line: the decision " +
        "threshold (" + pct(threshold) + "); grey band (" + pct(lo) + "–" + pct(hi) + "): " +
        "too close to call; above it: likely manipulated."));
      card.appendChild(fig);
    }

    var heatUrl = mediaUrl(face.heatmap);
    if (heatUrl) {
      var hfig = make("figure", "heatmap-figure");
      var himg = make("img", "heatmap");
      himg.alt = "Heatmap of face " + (i + 1) + ": the most suspicious frame with the regions " +
        "that drove the score coloured in, and beside it the face enlarged";
      himg.src = heatUrl;
      var link = make("a", "heatmap-link");
      link.href = heatUrl;
      link.target = "_blank";
      link.rel = "noopener";
      link.title = "Open the heatmap at full size";
      link.appendChild(himg);
      hfig.appendChild(link);
      hfig.appendChild(heatmapLegend());
      var peak = frames.reduce(function (best, f) {
        return best === null || (f.fake_probability || 0) > (best.fake_probability || 0) ? f : best;
      }, null);
      var cap = (isVideo ? "Most suspicious frame" +
        (peak && isNum(peak.time_s) ? " (at " + fmtSeconds(peak.time_s) + ")" : "") : "The photo") +
        "; right: the face enlarged. Coloured regions drove the score (blue weakly, red most); " +
        "uncoloured parts did not.";
      if (!face.peak_region) {
        cap += " The model found no localized region in this face: nothing stands out.";
      }
      hfig.appendChild(make("figcaption", "hint", cap));
      card.appendChild(hfig);
    } else {
      card.appendChild(make("p", "hint no-heatmap", "No heatmap: the model found no localized " +
        "region to show for this face."));
    }
    return card;
  }

  /* The smallest round step (seconds) that puts at most `maxTicks` ticks on `span`. */
  function niceStep(span, maxTicks) {
    var steps = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    for (var i = 0; i < steps.length; i++) {
      if (span / steps[i] <= maxTicks) return steps[i];
    }
    return Math.ceil(span / maxTicks / 3600) * 3600;
  }

  /* Frames' probabilities over time, with the face's own probability (solid line), the
   * threshold (dashed) and the uncertain band, all on one 0-100% scale. */
  function timeline(frames, decision, duration, index, faceP) {
    var threshold = decision.threshold, band = decision.band;
    // drawn at about the size it is shown, so the 12px labels stay readable on a phone
    var avail = el.faces.clientWidth || 420;
    var W = Math.round(Math.max(300, Math.min(520, avail - 40))), H = 200, L = 42, R = 70, T = 10, B = 38;
    var pw = W - L - R, ph = H - T - B;
    var times = frames.map(function (f) { return isNum(f.time_s) ? f.time_s : 0; });
    var tMax = Math.max(duration || 0, times[times.length - 1] || 0);
    if (!(tMax > 0)) tMax = 1;
    var x = function (t) { return L + (t / tMax) * pw; };
    var y = function (p) { return T + ph - Math.max(0, Math.min(1, p)) * ph; };

    var root = svg("svg", {
      class: "timeline", viewBox: "0 0 " + W + " " + H, role: "img",
      preserveAspectRatio: "xMidYMid meet"
    });
    var titleId = "timeline-title-" + index;
    var t = svg("title", { id: titleId });
    t.textContent = "Probability of manipulation over time for face " + (index + 1) +
      (isNum(faceP) ? "; the face as a whole: " + pct(faceP) : "");
    root.appendChild(t);
    root.setAttribute("aria-labelledby", titleId);

    root.appendChild(svg("rect", { class: "tl-plot", x: L, y: T, width: pw, height: ph }));
    var lo = Math.max(0, threshold - band), hi = Math.min(1, threshold + band);
    root.appendChild(svg("rect", { class: "tl-fake-zone", x: L, y: T, width: pw, height: y(hi) - T }));
    root.appendChild(svg("rect", { class: "tl-band", x: L, y: y(hi), width: pw, height: y(lo) - y(hi) }));

    [0, 0.25, 0.5, 0.75, 1].forEach(function (p) {
      root.appendChild(svg("line", { class: "tl-grid", x1: L, x2: L + pw, y1: y(p), y2: y(p) }));
      var label = svg("text", { class: "tl-axis", x: L - 6, y: y(p) + 4, "text-anchor": "end" });
      label.textContent = Math.round(p * 100) + "%";
      root.appendChild(label);
    });
    root.appendChild(svg("line", {
      class: "tl-threshold", x1: L, x2: L + pw, y1: y(threshold), y2: y(threshold)
    }));

    var step = niceStep(tMax, Math.max(3, Math.floor(pw / 55)));
    for (var k = 0; k * step <= tMax + 1e-9; k++) {
      var s = k * step;
      var tick = svg("text", { class: "tl-axis", x: x(s), y: T + ph + 16, "text-anchor": "middle" });
      tick.textContent = (Math.round(s * 100) / 100) + " s";
      root.appendChild(tick);
      root.appendChild(svg("line", { class: "tl-tick", x1: x(s), x2: x(s), y1: T + ph, y2: T + ph + 4 }));
    }
    var xl = svg("text", { class: "tl-axis-title", x: L + pw / 2, y: H - 3, "text-anchor": "middle" });
    xl.textContent = "time (seconds)";
    root.appendChild(xl);

    var points = frames.map(function (f, k) {
      return x(times[k]).toFixed(1) + "," + y(isNum(f.fake_probability) ? f.fake_probability : 0).toFixed(1);
    });
    if (points.length > 1) {
      root.appendChild(svg("polyline", { class: "tl-line", points: points.join(" ") }));
    }
    var peak = 0;
    frames.forEach(function (f, k) {
      if ((f.fake_probability || 0) > (frames[peak].fake_probability || 0)) peak = k;
    });
    frames.forEach(function (f, k) {
      var p = isNum(f.fake_probability) ? f.fake_probability : 0;
      var dot = svg("circle", {
        class: "tl-dot" + (k === peak ? " tl-peak" : ""), cx: x(times[k]), cy: y(p),
        r: k === peak ? 4.5 : (frames.length > 60 ? 1.6 : 2.6)
      });
      var tip = svg("title");
      tip.textContent = fmtSeconds(times[k]) + ": " + pct(p) + " probability of manipulation";
      dot.appendChild(tip);
      root.appendChild(dot);
    });
    if (isNum(faceP)) {
      root.appendChild(svg("line", { class: "tl-face", x1: L, x2: L + pw, y1: y(faceP), y2: y(faceP) }));
      // named in the right margin, level with the line: where the face's number sits
      var faceLabel = svg("text", {
        class: "tl-face-label", x: L + pw + 5, y: Math.max(T + 9, Math.min(T + ph, y(faceP) + 4)),
        "text-anchor": "start"
      });
      faceLabel.textContent = "face " + pct(faceP);
      root.appendChild(faceLabel);
    }
    return root;
  }

  // ------------------------------------------------------------ recent scans

  /* The overall verdict of a listed scan in a few words, with the probability that the
   * media is not authentic; an abstain names why (no face, unreadable file...), so it never
   * reads like an uncertain score. */
  function recentLabel(scan) {
    if (scan.status === "queued") return "queued";
    if (scan.status === "running") return "analysing";
    if (scan.status === "failed") return "scan failed";
    var v = scan.verdict;
    var why = STATUS_SHORT[scan.result_status] || "";
    if (!v || !OVERALL.hasOwnProperty(v.label) || v.label === "no_verdict" || !isNum(v.probability)) {
      return "no verdict" + (why ? ": " + why : "");
    }
    return OVERALL[v.label].title.toLowerCase() + " · " + notAuthentic(v.probability) +
      (why ? " (" + why + ")" : "");
  }

  function recentTone(scan) {
    if (scan.status !== "done") return scan.status === "failed" ? "failed" : "pending";
    var v = scan.verdict;
    return v && OVERALL.hasOwnProperty(v.label) ? OVERALL[v.label].tone : "neutral";
  }

  function markCurrent() {
    Array.prototype.forEach.call(el.recent.children, function (li) {
      li.classList.toggle("current", li.getAttribute("data-scan-id") === currentId);
    });
  }

  function refreshRecent() {
    return api("GET", "/api/scans?limit=20").then(function (res) {
      if (!res.ok) {
        if (res.status === 401) showTokenForm(true);
        return;
      }
      var scans = res.body && Array.isArray(res.body.scans) ? res.body.scans : [];
      clear(el.recent);
      el.recentEmpty.hidden = scans.length > 0;
      scans.forEach(function (scan) {
        if (!scan || typeof scan.id !== "string") return;
        var li = make("li", "recent-item");
        li.setAttribute("data-scan-id", scan.id);
        if (scan.id === currentId) li.classList.add("current");
        var a = make("a", "recent-link");
        a.href = "#/scans/" + encodeURIComponent(scan.id);
        a.appendChild(make("span", "recent-name", scan.filename || scan.id));
        a.appendChild(make("span", "recent-date", fmtDate(scan.created_at)));
        li.appendChild(a);
        var badge = make("span", "badge badge-" + recentTone(scan), recentLabel(scan));
        var v = scan.verdict;
        badge.setAttribute("data-verdict", scan.status === "done" && v && v.label ? String(v.label)
          : String(scan.status || ""));
        li.appendChild(badge);
        var del = make("button", "secondary small delete", "Delete");
        del.type = "button";
        var name = scan.filename || scan.id;
        del.setAttribute("aria-label", "Delete scan of " + name);
        del.addEventListener("click", function () {
          var ok = window.confirm("Delete the scan of \u201c" + name + "\u201d? Its verdict, " +
            "face previews and heatmaps are removed from the server for good.");
          if (ok) deleteScan(scan.id);
        });
        li.appendChild(del);
        el.recent.appendChild(li);
      });
    });
  }

  function deleteScan(id) {
    api("DELETE", "/api/scans/" + encodeURIComponent(id)).then(function (res) {
      if (!res.ok && res.status !== 404) {
        handleError(res.status, res.body, res.retryAfter);
        return;
      }
      if (id === currentId) clearResult();
      showMessage("Scan deleted.", "info");
      refreshRecent();
    });
  }

  // ------------------------------------------------------------------ health

  function loadHealth() {
    api("GET", "/api/health").then(function (res) {
      if (!res.ok || !res.body) return;
      var h = res.body;
      var parts = ["fakescope" + (h.version ? " " + h.version : "")];
      if (h.detector) parts.push("detector " + h.detector);
      if (h.synthesis_detector) parts.push("synthesis detector " + h.synthesis_detector);
      if (isNum(h.workers)) parts.push(h.workers + (h.workers === 1 ? " worker" : " workers"));
      el.referenceBlock.hidden = h.gallery !== true;
      parts.push("runs offline on this server");
      el.serverInfo.textContent = parts.join(" · ");
    });
  }

  // ------------------------------------------------------------------ router

  function route() {
    var m = /^#\/scans\/([A-Za-z0-9_-]+)$/.exec(window.location.hash);
    if (m) {
      openScan(decodeURIComponent(m[1]));
    } else {
      clearResult();
    }
    markCurrent();
  }

  // -------------------------------------------------------------------- init

  function init() {
    el = {
      messages: $("messages"), dropzone: $("dropzone"), fileInput: $("file-input"),
      uploadStatus: $("upload-status"), uploadProgress: $("upload-progress"),
      uploadLabel: $("upload-label"), scanStatus: $("scan-status"),
      scanProgress: $("scan-progress"), scanLabel: $("scan-label"), result: $("result"),
      verdictCard: $("verdict-card"), verdict: $("verdict"), explain: $("verdict-explain"),
      reasons: $("verdict-reasons"), notes: $("verdict-notes"),
      reason: $("verdict-reason"), resultFile: $("result-file"), meta: $("result-meta"),
      technical: $("technical"),
      provenance: $("provenance"), provBody: $("provenance-body"), faces: $("faces"),
      faceQuestion: $("face-question"), faceAnswer: $("face-answer"),
      faceExplain: $("face-explain"),
      synthesis: $("synthesis"), synthVerdict: $("synthesis-verdict"),
      synthExplain: $("synthesis-explain"), synthMeta: $("synthesis-meta"),
      referenceBlock: $("reference-block"), referenceInput: $("reference-input"),
      facesTitle: $("faces-title"), recent: $("recent"), recentEmpty: $("recent-empty"),
      recentRefresh: $("recent-refresh"), tokenForm: $("token-form"),
      tokenInput: $("token-input"), tokenToggle: $("token-toggle"),
      tokenClear: $("token-clear"), tokenHint: $("token-hint"), serverInfo: $("server-info")
    };

    el.fileInput.addEventListener("change", function () {
      var file = el.fileInput.files && el.fileInput.files[0];
      if (file) upload(file);
      el.fileInput.value = "";
    });
    ["dragenter", "dragover"].forEach(function (type) {
      el.dropzone.addEventListener(type, function (ev) {
        ev.preventDefault();
        el.dropzone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      el.dropzone.addEventListener(type, function () { el.dropzone.classList.remove("dragging"); });
    });
    el.dropzone.addEventListener("drop", function (ev) {
      ev.preventDefault();
      el.dropzone.classList.remove("dragging");
      var files = ev.dataTransfer && ev.dataTransfer.files;
      if (files && files.length) upload(files[0]);
    });
    // a file dropped outside the zone must not make the browser navigate away
    window.addEventListener("dragover", function (ev) { ev.preventDefault(); });
    window.addEventListener("drop", function (ev) { ev.preventDefault(); });

    el.tokenToggle.addEventListener("click", function () {
      if (el.tokenForm.hidden) showTokenForm(false); else hideTokenForm();
    });
    el.tokenForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      setToken(el.tokenInput.value.trim());
      hideTokenForm();
      showMessage("");
      refreshRecent();
      route();
    });
    el.tokenClear.addEventListener("click", function () {
      setToken("");
      el.tokenInput.value = "";
    });
    el.recentRefresh.addEventListener("click", refreshRecent);
    window.addEventListener("hashchange", route);
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        // redraw the timelines for the new width (phone rotated, window resized)
        if (shownResult && !el.result.hidden && Math.abs(el.faces.clientWidth - shownWidth) > 60) {
          renderFaces(shownResult);
        }
      }, 200);
    });

    loadHealth();
    refreshRecent();
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
