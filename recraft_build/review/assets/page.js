(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("gallery-data").textContent);
var REVIEW = DATA.review;
var STATES = [["all","All","a"],["new","New","n"],["changed","Changed","c"],["up-to-date","Up to date","u"],
  ["not-built","Not built","b"],["removed","Removed","x"]];
var IMG_RE = /^img\/[0-9a-f]{64}(\.t[0-9]+)?\.(png|webp|jpg|svg|ico)$/;
var ui = {filter:"", state:"all", current:null, cursor:{}, busy:false};
var list = document.getElementById("list");
var filterBox = document.getElementById("filter");

function h(tag, attrs){
  var el = document.createElement(tag);
  if (attrs) for (var k in attrs) {
    var v = attrs[k];
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "cls") el.className = v;
    else if (k.slice(0,2) === "on") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (var i = 2; i < arguments.length; i++) {
    var c = arguments[i];
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) c.forEach(function(x){ if (x) el.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
    else el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}
function kb(n){ if (!n) return ""; return n < 1024 ? n + " B" : n < 1048576 ? (n/1024).toFixed(1) + " KB" : (n/1048576).toFixed(2) + " MB"; }
function dims(o){ return o && o.width && o.height ? o.width + "×" + o.height : ""; }
function stateLabel(s){ for (var i = 0; i < STATES.length; i++) if (STATES[i][0] === s) return STATES[i][1]; return s; }
function shq(s){ return /^[A-Za-z0-9_.\/:@%+=-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
function picture(img, alt){
  if (img && IMG_RE.test(img)) return h("img", {src: img, alt: alt, loading: "lazy", decoding: "async"});
  return h("div", {cls: "missing", text: "picture not in this machine's cache"});
}
function toast(msg, err){
  var t = document.getElementById("toast");
  t.textContent = msg; t.className = "toast" + (err ? " err" : ""); t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(function(){ t.hidden = true; }, err ? 9000 : 3500);
}

function matches(a){
  if (ui.state !== "all" && a.state !== ui.state) return false;
  var q = ui.filter.trim().toLowerCase();
  if (!q) return true;
  var name = a.name.toLowerCase();
  if (/[*?]/.test(q)) {
    var re = new RegExp("^" + q.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
    return re.test(name);
  }
  return name.indexOf(q) >= 0;
}
function visible(){ return DATA.assets.filter(matches); }
function findAsset(name){ for (var i = 0; i < DATA.assets.length; i++) if (DATA.assets[i].name === name) return DATA.assets[i]; return null; }

function renderChips(){
  var box = document.getElementById("chips"); box.textContent = "";
  STATES.forEach(function(s){
    var n = s[0] === "all" ? DATA.assets.length : (DATA.counts[s[0]] || 0);
    box.appendChild(h("button", {cls: "chip", type: "button", "aria-pressed": String(ui.state === s[0]),
      disabled: (n === 0 && s[0] !== "all" && ui.state !== s[0]) ? true : null, title: "key " + s[2],
      onclick: function(){ setState(s[0]); }}, s[1], h("span", {cls: "n", text: String(n)})));
  });
}
function setState(s){ ui.state = s; saveHash(); render(); }

function renderHeader(){
  document.getElementById("mode").textContent = REVIEW ? "review" : "gallery";
  document.getElementById("specname").textContent = DATA.spec + " · " + DATA.lock;
  var parts = [DATA.assets.length + " assets"];
  if (DATA.credits) parts.push(DATA.credits.toLocaleString() + " credits");
  parts.push(DATA.base.found ? "vs " + DATA.base.rev : "no git base");
  var summary = document.getElementById("summary");
  summary.textContent = parts.join(" · ");
  summary.title = (DATA.credits ? DATA.credits + " credits recorded in the lock; " : "") +
    (DATA.base.found ? "states compare with the lock in " + DATA.base.rev : "no base lock: " + DATA.base.note);
  var note = document.getElementById("basenote");
  if (!DATA.base.found && DATA.base.note) { note.hidden = false; note.textContent = "Every built asset shows as new: " + DATA.base.note; }
  else note.hidden = true;
  if (!REVIEW) {
    document.getElementById("help-enter").textContent = "show the pick command for the selected candidate";
    document.getElementById("help-digits").textContent = "select candidate 1 … 6";
    document.getElementById("help-r").textContent = "(review mode only) reroll";
  }
}

function paramChip(k, v){
  var kids = [h("b", {text: k})];
  if (k === "controls" && v && typeof v === "object") {
    Object.keys(v).sort().forEach(function(ck){
      var cv = v[ck];
      var colors = Array.isArray(cv) ? cv : (typeof cv === "string" ? [cv] : null);
      if (colors && colors.every(function(c){ return typeof c === "string" && /^#[0-9a-fA-F]{6}$/.test(c); })) {
        kids.push(ck + " ");
        colors.forEach(function(c){ var s = h("span", {cls: "sw", title: c}); s.style.background = c; kids.push(s); });
      } else kids.push(ck + "=" + JSON.stringify(cv) + " ");
    });
  } else kids.push(typeof v === "string" ? v : JSON.stringify(v));
  return h("span", {cls: "kv"}, kids);
}
function chain(steps){
  if (!steps || !steps.length) return null;
  var kids = [];
  steps.forEach(function(s, i){
    if (i) kids.push(h("span", {cls: "to", text: "→"}));
    kids.push(h("span", {cls: "st", title: s.params || ""}, s.name, s.params ? h("i", {text: s.params}) : null));
  });
  return h("div", {cls: "chain"}, kids);
}

function renderAsset(a){
  var cur = ui.cursor[a.name];
  if (cur === undefined || cur >= a.candidates.length) cur = a.pick === null ? 0 : a.pick;
  var head = h("div", {cls: "head"},
    h("h2", {text: a.name}),
    h("span", {cls: "badge " + a.state, text: stateLabel(a.state)}),
    a.changes.map(function(c){ return h("span", {cls: "badge", text: c}); }),
    h("span", {cls: "spacer"}),
    a.credits ? h("span", {cls: "cost", text: a.credits + " credits" + (a.roll ? " · roll " + a.roll : "")}) : null,
    (REVIEW && a.in_spec && a.candidates.length) ? h("button", {cls: "btn reroll", type: "button",
      title: "ask the provider for new candidates (key r)", onclick: function(){ reroll(a); }}, "Reroll…") : null);

  var cands = a.candidates.map(function(c){
    var picked = c.index === a.pick;
    var label = "candidate " + c.index + " of " + a.name;
    var frame = h(REVIEW ? "button" : "div", {cls: "frame", type: REVIEW ? "button" : null,
      title: REVIEW ? (picked ? "the picked candidate" : "pick candidate " + c.index) : "select candidate " + c.index,
      "aria-label": REVIEW ? "pick " + label : label,
      onclick: function(){ ui.current = a.name; ui.cursor[a.name] = c.index; if (REVIEW) pick(a, c.index); else render(); }},
      picture(c.thumb || c.img, label));
    return h("figure", {cls: "cand" + (picked ? " picked" : "") + (c.index === cur ? " cursor" : ""), "data-index": c.index},
      frame,
      h("figcaption", null, h("span", {cls: "idx", text: "#" + c.index}), picked ? h("span", {cls: "tag", text: "picked"}) : null,
        h("span", {text: dims(c)})),
      c.img ? h("a", {cls: "open", href: c.img, target: "_blank", rel: "noopener", title: "open full size (o)", text: "↗"}) : null);
  });
  var pics = [];
  if (a.previous) {
    pics.push(h("figure", {cls: "prev"},
      h("div", {cls: "frame", title: "picked in " + DATA.base.rev}, picture(a.previous.thumb || a.previous.img, "previous pick of " + a.name)),
      h("figcaption", null, h("span", {cls: "tag was", text: "before"}), "#" + a.previous.index + " in " + DATA.base.rev),
      a.previous.img ? h("a", {cls: "open", href: a.previous.img, target: "_blank", rel: "noopener", title: "open full size", text: "↗"}) : null));
    if (cands.length) pics.push(h("div", {cls: "arrow", text: "→"}));
  }
  if (cands.length) pics.push(h("div", {cls: "cands"}, cands));
  else if (!a.previous) pics.push(h("div", {cls: "missing", text: a.state === "not-built" ? "not built yet" : "no candidates"}));

  var details = h("div", {cls: "details"},
    a.notes.length ? h("ul", {cls: "notes"}, a.notes.map(function(n){ return h("li", {text: "⚠ " + n}); })) : null,
    a.prompt ? h("p", {cls: "prompt", text: a.prompt}) : null,
    h("div", {cls: "params"}, Object.keys(a.params).map(function(k){ return paramChip(k, a.params[k]); })),
    a.steps.length ? h("div", {cls: "section", text: "Steps"}) : null,
    chain(a.steps),
    a.outputs.length ? h("div", {cls: "section", text: "Outputs"}) : null,
    a.outputs.length ? h("table", {cls: "outs"}, h("tbody", null, outputRows(a))) : null,
    (!REVIEW && a.in_spec && a.candidates.length > 1 && cur !== a.pick) ? h("div", {cls: "hint"}, "to use #" + cur + ": ",
      h("code", {text: "recraft-build pick " + shq(a.name) + " " + cur})) : null);

  var sec = h("section", {cls: "asset st-" + a.state + (ui.current === a.name ? " current" : ""), tabindex: "-1",
    "data-name": a.name, onclick: function(){ if (ui.current !== a.name) { ui.current = a.name; markCurrent(); } }},
    head, h("div", {cls: "body"}, h("div", {cls: "pics"}, pics), details));
  return sec;
}
function outputRows(a){
  var rows = [];
  a.outputs.forEach(function(o){
    var files = o.files.length ? o.files : [{path: o.path}];
    files.forEach(function(f, i){
      rows.push(h("tr", null,
        h("td", null, f.img ? h("a", {cls: "thumb", href: f.img, target: "_blank", rel: "noopener"}, picture(f.img, f.path)) : h("div", {cls: "thumb"})),
        h("td", null, h("span", {cls: "mono", text: f.path}), (i === 0 && o.steps && o.steps.length) ? chain(o.steps) : null),
        h("td", {cls: "num", text: (f.format || "").toUpperCase()}),
        h("td", {cls: "num", text: dims(f)}),
        h("td", {cls: "num", text: f.bytes ? kb(f.bytes) : (a.state === "not-built" ? "not built" : "")})));
    });
  });
  return rows;
}

function render(){
  renderChips();
  var shown = visible();
  if (ui.current && !shown.some(function(a){ return a.name === ui.current; })) ui.current = shown.length ? shown[0].name : null;
  if (!ui.current && shown.length) ui.current = shown[0].name;
  var y = window.scrollY;
  list.textContent = "";
  shown.forEach(function(a){ list.appendChild(renderAsset(a)); });
  document.getElementById("empty").hidden = shown.length > 0;
  window.scrollTo(0, y);
}
function markCurrent(){
  Array.prototype.forEach.call(list.children, function(el){ el.classList.toggle("current", el.getAttribute("data-name") === ui.current); });
}
function currentEl(){
  var kids = list.children;
  for (var i = 0; i < kids.length; i++) if (kids[i].getAttribute("data-name") === ui.current) return kids[i];
  return null;
}
function move(step){
  var shown = visible(); if (!shown.length) return;
  var i = shown.findIndex(function(a){ return a.name === ui.current; });
  i = Math.max(0, Math.min(shown.length - 1, (i < 0 ? 0 : i + step)));
  ui.current = shown[i].name; markCurrent();
  var el = currentEl(); if (el) { el.scrollIntoView({block: "nearest"}); el.focus({preventScroll: true}); }
}
function moveCursor(step){
  var a = findAsset(ui.current); if (!a || !a.candidates.length) return;
  var cur = ui.cursor[a.name]; if (cur === undefined) cur = a.pick || 0;
  ui.cursor[a.name] = Math.max(0, Math.min(a.candidates.length - 1, cur + step));
  rerenderOne(a);
}
function rerenderOne(a){
  var el = currentEl(); if (!el) return;
  var fresh = renderAsset(a); list.replaceChild(fresh, el); fresh.focus({preventScroll: true});
}

function api(path, body){
  return fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-Review-Token": REVIEW.token},
    body: JSON.stringify(body), credentials: "same-origin", cache: "no-store"})
    .then(function(r){ return r.json().catch(function(){ return {error: "HTTP " + r.status}; })
      .then(function(j){ if (!r.ok || j.error) throw new Error(j.error || ("HTTP " + r.status)); return j; }); });
}
function refresh(){
  return fetch("/api/state", {cache: "no-store"}).then(function(r){ if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function(state){ state.review = REVIEW; DATA = state; renderHeader(); render(); });
}
function setBusy(a, on, idx){
  ui.busy = on;
  var el = currentEl();
  if (!el) return;
  Array.prototype.forEach.call(el.querySelectorAll("button"), function(b){ b.disabled = on; });
  if (idx !== undefined) { var f = el.querySelector('.cand[data-index="' + idx + '"]'); if (f) f.classList.toggle("busy", on); }
}
function pick(a, index){
  if (!REVIEW || ui.busy) return;
  if (index === a.pick) { toast("#" + index + " is already the pick of " + a.name); return; }
  ui.current = a.name; markCurrent();
  setBusy(a, true, index);
  toast("picking #" + index + " for " + a.name + "…");
  api("/api/pick", {asset: a.name, index: index})
    .then(function(j){ ui.cursor[a.name] = index; return refresh().then(function(){ toast("picked #" + index + " for " + a.name + (j.summary ? " · outputs rebuilt" : "")); }); })
    .catch(function(e){ toast(e.message, true); setBusy(a, false, index); })
    .then(function(){ ui.busy = false; });
}
function reroll(a){
  if (!REVIEW || ui.busy) return;
  var cost = a.reroll_credits ? "about " + a.reroll_credits + " credits" : (DATA.provider === "placeholder" ? "nothing (placeholder provider)" : "credits");
  var n = a.candidates.length;
  if (!window.confirm("Reroll " + a.name + "?\n\nThis asks " + (DATA.provider || "the provider") + " for " + n +
      " new candidate(s) and costs " + cost + ". The current candidates stay in the cache.")) return;
  ui.current = a.name; markCurrent(); setBusy(a, true);
  toast("rerolling " + a.name + "… (waiting for the provider)");
  api("/api/reroll", {asset: a.name})
    .then(function(){ ui.cursor[a.name] = 0; return refresh().then(function(){ toast("new candidates for " + a.name); }); })
    .catch(function(e){ toast(e.message, true); setBusy(a, false); })
    .then(function(){ ui.busy = false; });
}

function saveHash(){
  var parts = [];
  if (ui.filter) parts.push("q=" + encodeURIComponent(ui.filter));
  if (ui.state !== "all") parts.push("state=" + encodeURIComponent(ui.state));
  try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search); } catch (e) {}
}
function loadHash(){
  location.hash.replace(/^#/, "").split("&").forEach(function(p){
    var kv = p.split("="); if (kv.length !== 2) return;
    var v = decodeURIComponent(kv[1]);
    if (kv[0] === "q") ui.filter = v;
    if (kv[0] === "state" && STATES.some(function(s){ return s[0] === v; })) ui.state = v;
  });
  filterBox.value = ui.filter;
}

filterBox.addEventListener("input", function(){ ui.filter = filterBox.value; ui.current = null; saveHash(); render(); });
filterBox.addEventListener("keydown", function(e){
  if (e.key === "Escape" || e.key === "Enter" || e.key === "ArrowDown") {
    e.preventDefault(); filterBox.blur(); move(0);
  }
});
var help = document.getElementById("help");
document.getElementById("help-btn").addEventListener("click", function(){ help.hidden = !help.hidden; });
help.addEventListener("click", function(e){ if (e.target === help) help.hidden = true; });

document.addEventListener("keydown", function(e){
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  var t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
  var k = e.key;
  if (!help.hidden && k !== "?") { if (k === "Escape") help.hidden = true; return; }
  var a = findAsset(ui.current);
  if (k === "j" || k === "ArrowDown") { e.preventDefault(); move(1); }
  else if (k === "k" || k === "ArrowUp") { e.preventDefault(); move(-1); }
  else if (k === "h" || k === "ArrowLeft") { e.preventDefault(); moveCursor(-1); }
  else if (k === "l" || k === "ArrowRight") { e.preventDefault(); moveCursor(1); }
  else if (k === "/") { e.preventDefault(); filterBox.focus(); filterBox.select(); }
  else if (k === "?") { help.hidden = !help.hidden; }
  else if (k === "Escape") { help.hidden = true; }
  else if (/^[1-6]$/.test(k) && a) {
    var i = parseInt(k, 10) - 1;
    if (i < a.candidates.length) { ui.cursor[a.name] = i; if (REVIEW) pick(a, i); else rerenderOne(a); }
  }
  else if (k === "Enter" && a && a.candidates.length) {
    var c = ui.cursor[a.name]; if (c === undefined) c = a.pick || 0;
    if (REVIEW) { e.preventDefault(); pick(a, c); }
  }
  else if (k === "o" && a) {
    var ci = ui.cursor[a.name]; if (ci === undefined) ci = a.pick || 0;
    var cand = a.candidates[ci]; if (cand && cand.img) window.open(cand.img, "_blank", "noopener");
  }
  else if (k === "r" && a && REVIEW) { reroll(a); }
  else {
    for (var s = 0; s < STATES.length; s++) if (STATES[s][2] === k) { setState(STATES[s][0]); break; }
  }
});

loadHash();
renderHeader();
render();
window.__gallery = {ready: true};
})();
