// Mailroom upload page: drop scans, send each letter with per-file progress,
// then poll the letter until OCR is done and show reference, language,
// thumbnail and the first lines of text (or why it was refused). The language
// comes named in the page's language (language_name), its tag in data-tag.
(function () {
  "use strict";
  const form = document.getElementById("letter-form");
  const t = JSON.parse(document.getElementById("texts").textContent);
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const pendingList = document.getElementById("pending");
  const results = document.getElementById("results");
  const formError = document.getElementById("form-error");
  let chosen = [];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showChosen() {
    pendingList.replaceChildren(...chosen.map((f) => el("li", {dir: "auto"}, f.name)));
  }

  function add(files) {
    chosen = chosen.concat(Array.from(files));
    showChosen();
  }

  input.addEventListener("change", () => { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, (e) => {
    e.preventDefault(); drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => add(e.dataTransfer.files));
  document.getElementById("clear").addEventListener("click", () => { chosen = []; showChosen(); });

  function card(files) {
    const box = el("div", {class: "card letter"});
    const thumb = el("div", {class: "thumb"});
    const body = el("div", {});
    const status = el("p", {class: "status"}, t.status_uploading);
    const list = el("ul", {class: "files"});
    const bars = files.map((f) => {
      const bar = el("progress", {max: "100", value: "0"});
      const item = el("li", {dir: "auto"}, f.name);
      item.appendChild(bar);
      list.appendChild(item);
      return bar;
    });
    body.append(status, list);
    box.append(thumb, body);
    results.prepend(box);
    return {box, thumb, body, status, bars};
  }

  function progress(view, files, loaded) {
    let offset = 0;
    files.forEach((f, i) => {
      const done = Math.max(0, Math.min(f.size, loaded - offset));
      view.bars[i].value = f.size ? (100 * done) / f.size : 100;
      offset += f.size;
    });
  }

  // A reference reads left to right, in one piece, on the Arabic page too: <bdi dir="ltr">.
  function line(label, value, attrs, ltr) {
    const p = el("p", attrs || {});
    const shown = ltr ? el("bdi", {dir: "ltr"}, value) : el("span", {dir: "auto"}, value);
    p.append(el("strong", {}, label + " : "), shown);
    return p;
  }

  function showLetter(view, letter) {
    view.status.className = "status status-" + letter.status;
    view.status.textContent = t["status_" + letter.status] || letter.status;
    view.body.querySelectorAll(".detail").forEach((n) => n.remove());
    const detail = el("div", {class: "detail"});
    detail.append(line(t.reference, letter.reference, {class: "reference"}, true));
    detail.append(line(t.pages, String(letter.pages)));
    if (letter.language) {
      const named = line(t.language, letter.language_name || letter.language, {class: "language"});
      named.dataset.tag = letter.language;
      detail.append(named);
    }
    if (letter.review) detail.append(el("p", {class: "review"}, t.review));
    if (letter.error) detail.append(el("p", {class: "error"}, letter.error.message));
    if (letter.excerpt) {
      detail.append(el("p", {}, t.excerpt));
      detail.append(el("pre", {class: "excerpt", dir: "auto"}, letter.excerpt));
    }
    view.body.append(detail);
    if (letter.status === "done" && !view.thumb.firstChild) {
      view.thumb.append(el("img", {src: "/letters/" + letter.id + "/thumbnail.png", alt: ""}));
    }
  }

  function poll(view, id) {
    fetch("/letters/status/" + id, {headers: {Accept: "application/json"}})
      .then((r) => r.json())
      .then((letter) => {
        showLetter(view, letter);
        if (letter.status === "pending" || letter.status === "running") {
          setTimeout(() => poll(view, id), 1000);
        }
      })
      .catch(() => setTimeout(() => poll(view, id), 3000));
  }

  function send(files) {
    const view = card(files);
    const data = new FormData();
    files.forEach((f) => data.append("files", f, f.name));
    ["received_on", "sender_name", "sender_address"].forEach((name) => {
      data.append(name, document.getElementById(name).value);
    });
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/letters/upload?lang=" + form.dataset.lang);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => progress(view, files, e.loaded);
    xhr.onload = () => {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {}; }
      if (xhr.status === 200 || xhr.status === 202) {
        progress(view, files, Infinity);
        showLetter(view, answer);
        poll(view, answer.id);
      } else {
        view.status.className = "status status-refused";
        view.status.textContent = t.status_refused;
        const message = (answer.error && answer.error.message) || t.network_error;
        view.body.append(el("p", {class: "error reason"}, message));
      }
    };
    xhr.onerror = () => { view.status.textContent = t.network_error; };
    xhr.send(data);
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    formError.textContent = "";
    if (!chosen.length) { formError.textContent = t.no_files; return; }
    const groups = document.getElementById("separate").checked ? chosen.map((f) => [f]) : [chosen];
    groups.forEach(send);
    chosen = [];
    showChosen();
  });
})();
