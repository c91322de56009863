/* Progressive enhancement of the complaint form. The page works without it
   (a plain form POST, errors from the server); with it, fields are checked
   as they are left, the error summary appears before a round trip, uploads
   show their progress, and the reference can be copied in one click.
   Every sentence comes from the page (#form-messages), in its language. */
(function () {
  "use strict";

  function format(template, params) {
    return template.replace(/\{(\w+)\}/g, function (_, key) {
      return params && key in params ? params[key] : "";
    });
  }

  function setupCopy() {
    var button = document.querySelector(".copy-button");
    if (!button || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
        var status = document.querySelector(".copy-status");
        if (status) { status.textContent = button.getAttribute("data-copied"); }
      });
    });
  }

  function setupForm(form) {
    var data = document.getElementById("form-messages");
    if (!data) { return; }
    var config = JSON.parse(data.textContent);
    var messages = config.errors;
    var field = function (name) { return document.getElementById("f-" + name); };
    var emailPattern = /^[^@\s<>()\[\],;:"]+@[^@\s<>()\[\],;:"]+\.[^@\s<>()\[\],;:"]+$/;
    var phonePattern = /^[+0-9][0-9 .\-()]{5,38}$/;

    function check(name) {
      var value = (field(name) && field(name).value || "").trim();
      var phone = field("phone").value.trim();
      var email = field("email").value.trim();
      if (name === "phone") {
        if (!phone && !email) { return [messages.contact_missing]; }
        if (phone && !phonePattern.test(phone)) { return [messages.phone_invalid]; }
      }
      if (name === "email" && email && !emailPattern.test(email)) { return [messages.email_invalid]; }
      if (name === "text" && !value) { return [messages.text_missing]; }
      if (name === "preferred_contact") {
        if (value === "email" && !email) { return [messages.contact_needs_email]; }
        if (["phone", "sms", "whatsapp"].indexOf(value) >= 0 && !phone) {
          return [messages.contact_needs_phone];
        }
      }
      if (name === "attachments") { return checkFiles(field(name).files || []); }
      return [];
    }

    function checkFiles(files) {
      if (files.length > config.max_files) {
        return [format(messages.too_many_files, { max: config.max_files })];
      }
      var found = [];
      Array.prototype.forEach.call(files, function (file) {
        if (file.size > config.max_bytes) {
          found.push(format(messages.file_too_large, { name: file.name, max_mb: config.max_mb }));
        } else if (file.type && config.accepted.indexOf(file.type) < 0) {
          found.push(format(messages.file_type, { name: file.name }));
        }
      });
      return found;
    }

    function show(name, problems) {
      var input = field(name);
      var holder = document.getElementById("f-" + name + "-error");
      if (!input || !holder) { return; }
      holder.textContent = "";
      problems.forEach(function (text) {
        var line = document.createElement("span");
        line.textContent = text;
        holder.appendChild(line);
      });
      holder.hidden = problems.length === 0;
      input.closest(".field").classList.toggle("has-error", problems.length > 0);
      if (problems.length) { input.setAttribute("aria-invalid", "true"); }
      else { input.removeAttribute("aria-invalid"); }
    }

    var checked = ["phone", "email", "text", "attachments", "preferred_contact"];
    checked.forEach(function (name) {
      var input = field(name);
      var event = input.tagName === "SELECT" || input.type === "file" ? "change" : "blur";
      input.addEventListener(event, function () {
        show(name, check(name));
        if (name === "phone" || name === "email") { show("preferred_contact", check("preferred_contact")); }
      });
    });

    function summarize(found) {
      var summary = document.getElementById("error-summary");
      var list = summary.querySelector("ul");
      list.textContent = "";
      found.forEach(function (item) {
        var entry = document.createElement("li");
        var link = document.createElement("a");
        link.href = "#f-" + item.name;
        link.textContent = item.text;
        entry.appendChild(link);
        list.appendChild(entry);
      });
      summary.hidden = found.length === 0;
      if (found.length) { summary.focus(); }
    }

    form.addEventListener("submit", function (event) {
      var found = [];
      checked.forEach(function (name) {
        var problems = check(name);
        show(name, problems);
        problems.forEach(function (text) { found.push({ name: name, text: text }); });
      });
      if (found.length) {
        event.preventDefault();
        summarize(found);
        return;
      }
      var files = field("attachments").files;
      if (files && files.length && window.FormData && window.XMLHttpRequest) {
        event.preventDefault();
        upload(form);
      }
    });

    function upload(target) {
      var box = document.getElementById("upload-progress");
      var bar = document.getElementById("upload-bar");
      var label = box.querySelector(".progress-value");
      var request = new XMLHttpRequest();
      box.hidden = false;
      target.querySelector("button[type=submit]").disabled = true;
      request.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) { return; }
        var percent = Math.round((event.loaded / event.total) * 100);
        bar.value = percent;
        label.textContent = percent + " %";
      });
      request.addEventListener("load", function () {
        document.open();
        document.write(request.responseText);
        document.close();
      });
      request.addEventListener("error", function () {
        // The network failed: fall back to the plain POST, which reports in full.
        target.submit();
      });
      request.open("POST", target.action);
      request.send(new FormData(target));
    }
  }

  // Past the per-address limits (many customers behind one mobile carrier's
  // address), the server asks this browser for a proof of work on its form
  // token: a number n such that sha256(token + ":" + n) starts with `bits`
  // zero bits (channels/webform/guard.py: work_done). Solved in the
  // background; the customer sends the form again once it is in.
  function solveWork(form) {
    var field = form.querySelector("input[data-pow-bits]");
    var token = form.querySelector("input[name=csrf_token]");
    if (!field || !token || !window.crypto || !window.crypto.subtle) { return; }
    var bits = parseInt(field.getAttribute("data-pow-bits"), 10);
    var encoder = new TextEncoder();
    function leadingZeros(buffer) {
      var bytes = new Uint8Array(buffer);
      var count = 0;
      for (var i = 0; i < bytes.length; i++) {
        if (bytes[i] === 0) { count += 8; continue; }
        for (var mask = 0x80; mask && !(bytes[i] & mask); mask >>= 1) { count += 1; }
        break;
      }
      return count;
    }
    function attempt(n) {
      var batch = [];
      for (var k = 0; k < 256; k++) {
        batch.push(window.crypto.subtle.digest("SHA-256", encoder.encode(token.value + ":" + (n + k))));
      }
      Promise.all(batch).then(function (digests) {
        for (var k = 0; k < digests.length; k++) {
          if (leadingZeros(digests[k]) >= bits) { field.value = String(n + k); return; }
        }
        attempt(n + batch.length);
      });
    }
    attempt(0);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy();
    var worked = document.getElementById("complaint-form");
    if (worked) { solveWork(worked); }
    var form = document.getElementById("complaint-form");
    if (form) { setupForm(form); }
    var summary = document.getElementById("error-summary");
    var notice = document.getElementById("notice");
    if (summary && !summary.hidden) { summary.focus(); }
    else if (notice) { notice.focus(); }
  });
})();
