// portvakt's development page. No framework, no build step: the three panels talk to the
// JSON endpoints beside the page (/dev/page/*) and nothing else. Tokens live only in the
// document: never in storage, never in an address, never logged.
"use strict";

(function () {
  const API = "/dev/page";
  let grants = null;
  let ticker = null;

  // --- helpers ---------------------------------------------------------------------------

  /** An element with attributes and children (strings become text, never HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  async function call(path, body) {
    const init = body === undefined
      ? { method: "GET", cache: "no-store", credentials: "omit" }
      : {
          method: "POST",
          cache: "no-store",
          credentials: "omit",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        };
    const response = await fetch(API + path, init);
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("application/json")) {
      throw new Error((await response.text()).trim() || `HTTP ${response.status}`);
    }
    return response.json();
  }

  function problem(container, message) {
    clear(container).append(el("p", { class: "error", role: "alert", text: message }));
  }

  function words(text) {
    return text.split(/\s+/).filter((w) => w.length > 0);
  }

  /** A copy button for `text()`, with a status the screen reader announces. */
  function copyButton(label, text) {
    const status = el("span", { class: "copied", role: "status" });
    const button = el("button", {
      type: "button",
      class: "secondary",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text());
          status.textContent = "Copied.";
        } catch (e) {
          status.textContent = "Copying failed; select the text and copy it.";
        }
        setTimeout(() => { status.textContent = ""; }, 4000);
      },
    }, label);
    return el("span", { class: "copy" }, button, status);
  }

  function seconds(total) {
    const s = Math.abs(total);
    const text = s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
    return total >= 0 ? `in ${text}` : `${text} ago`;
  }

  // --- Grants ----------------------------------------------------------------------------

  const CELL_TEXT = { granted: "granted", all: "all", "not-granted": "not granted", disabled: "disabled" };

  function scopeSettings(grant) {
    const parts = [`atMaxAge ${grant.atMaxAge} s`];
    parts.push(grant.delegationSource ? `delegation: ${grant.delegationSource}` : "no delegation");
    if (grant.visibility !== "public") parts.push(`visibility ${grant.visibility}`);
    if (!grant.allowedIntegrations.includes("maskinporten")) {
      parts.push(`integrations: ${grant.allowedIntegrations.join(", ") || "none"}`);
    }
    return parts.join(" · ");
  }

  function renderGrants(data) {
    grants = data;
    $("context").textContent =
      `Served by ${data.served_by} in development mode. Local issuer ${data.issuer}`;
    $("grants-source").textContent =
      `From ${data.file} (prefix "${data.prefix}"). Audience: ` +
      (data.required_audience
        ? `the validator requires aud ${data.required_audience}.`
        : "none required by the validator; a consumer may still ask for an audience-restricted token.");
    const note = $("grants-note");
    note.hidden = !data.note;
    note.textContent = data.note || "";

    const head = clear($("matrix").tHead);
    head.append(el("tr", {},
      el("th", { scope: "col" }, "Scope"),
      data.consumers.map((c) => el("th", { scope: "col" },
        el("span", { class: "orgno" }, c.orgno),
        c.name ? el("span", { class: "name" }, c.name) : null)),
      el("th", { scope: "col" }, "Any other organization")));
    const body = clear($("matrix").tBodies[0]);
    if (data.rows.length === 0) {
      body.append(el("tr", {}, el("td", { colspan: data.consumers.length + 2, text: "The manifest exposes no scopes." })));
    }
    for (const row of data.rows) {
      const g = row.grant;
      const other = row.other;
      body.append(el("tr", {},
        el("th", { scope: "row" },
          el("code", { class: "scope" }, g.scope),
          el("span", { class: "settings" }, scopeSettings(g))),
        row.cells.map((c) => el("td", {},
          el("span", { class: `cell ${c.state}`, title: c.why }, CELL_TEXT[c.state]),
          el("span", { class: "visually-hidden" }, `: ${c.why}`))),
        el("td", {},
          el("span", { class: `cell ${other.state}`, title: other.why }, CELL_TEXT[other.state]),
          el("span", { class: "visually-hidden" }, `: ${other.why}`))));
    }

    $("diagnostics-summary").textContent = data.summary;
    const list = clear($("diagnostics"));
    for (const item of data.diagnostics) {
      const d = item.diagnostic;
      list.append(el("li", { class: d.severity },
        el("span", { class: "where" }, `line ${d.line}, column ${d.column}`),
        el("span", { class: `severity ${d.severity}` }, d.severity),
        el("span", {}, `${d.message} `),
        el("code", {}, `[${d.code}]`),
        d.help ? el("span", { class: "help" }, `help: ${d.help}`) : null));
    }
    if (data.diagnostics.length === 0) list.append(el("li", { text: "No problems found." }));

    const policy = $("policy");
    policy.hidden = !data.proxy;
    $("route-proxy").disabled = !data.proxy;
    $("route-proxy-choice").classList.toggle("unavailable", !data.proxy);
    if (data.proxy) {
      $("policy-source").textContent =
        `${data.proxy.policy}: the proxy at ${data.proxy.url}; a request matching no route gets "${data.proxy.default}".`;
      const routes = clear($("routes").tBodies[0]);
      for (const r of data.proxy.routes) {
        routes.append(el("tr", {},
          el("td", {}, String(r.line)),
          el("td", {}, r.methods ? r.methods.join(", ") : "any"),
          el("td", {}, el("code", {}, r.path)),
          el("td", {}, r.access)));
      }
    }

    // The Mint panel's choices.
    const orgnos = clear($("mint-orgnos"));
    for (const c of data.consumers) orgnos.append(el("option", { value: c.orgno }, c.name || ""));
    const scopes = clear($("mint-scopes"));
    const names = clear($("scope-names"));
    data.rows.forEach((row, i) => {
      const g = row.grant;
      scopes.append(el("label", {},
        el("input", { type: "checkbox", name: "scope", value: g.scope, checked: i === 0 }),
        " ", el("code", {}, g.scope), g.enabled ? "" : " (disabled)"));
      names.append(el("option", { value: g.scope }));
    });
    const first = data.rows.find((r) => r.grant.consumers.length > 0);
    if (first && !$("mint-orgno").value) $("mint-orgno").value = first.grant.consumers[0].orgno;
  }

  // --- Mint ------------------------------------------------------------------------------

  async function mint(event) {
    event.preventDefault();
    const result = $("mint-result");
    const scopes = Array.from(document.querySelectorAll("#mint-scopes input:checked")).map((i) => i.value);
    const body = {
      orgno: $("mint-orgno").value.trim(),
      scopes,
      audience: $("mint-audience").value.trim() || null,
      on_behalf_of: $("mint-obo").value.trim() || null,
    };
    clear(result).append(el("p", { text: "Asking the issuer…" }));
    let answer;
    try {
      answer = await call("/mint", body);
    } catch (e) {
      return problem(result, `The page could not ask the issuer: ${e.message}`);
    }
    if (!answer.ok) {
      clear(result).append(
        el("h3", { text: "Refused" }),
        el("pre", { class: "refusal", id: "mint-refusal", role: "alert" }, answer.error));
      return;
    }
    const token = answer.token;
    const shell = [`TOKEN='${token}'`].concat(answer.curl.map((c) => `# ${c.label}\n${c.command}`)).join("\n");
    clear(result).append(
      el("h3", { text: "Token" }),
      el("p", {}, `Scopes ${answer.scope}; expires in ${answer.expires_in} s.`),
      el("label", { for: "mint-token" }, "Access token (a secret: paste it only into tools you trust)"),
      el("textarea", { id: "mint-token", rows: 4, readonly: true, spellcheck: "false" }, token),
      el("div", { class: "actions" },
        copyButton("Copy token", () => token),
        el("button", { type: "button", id: "mint-inspect", onclick: () => inspectToken(token) }, "Inspect this token")),
      el("h3", { text: "Try it" }),
      el("pre", { class: "shell", id: "mint-curl" }, shell),
      el("div", { class: "actions" }, copyButton("Copy commands", () => shell)));
  }

  // --- Inspect ---------------------------------------------------------------------------

  function routeChoice() {
    return document.querySelector('input[name="route"]:checked').value;
  }

  function showRouteFields() {
    const choice = routeChoice();
    $("route-scopes-fields").hidden = choice !== "scopes";
    $("route-proxy-fields").hidden = choice !== "proxy";
  }

  function inspectToken(token) {
    $("inspect-token").value = token;
    location.hash = "#inspect";
    $("inspect-form").requestSubmit();
    $("inspect-token").focus();
  }

  const MARK = { passed: "pass", failed: "FAIL", skipped: "skip" };

  function renderInspection(answer, token) {
    const report = answer.inspection;
    const result = clear($("inspect-result"));
    result.append(el("p", { class: `verdict ${report.valid ? "valid" : "invalid"}`, id: "inspect-verdict" },
      report.valid ? "VALID" : `INVALID (${report.error}): ${report.error_description}`));
    result.append(el("p", {}, `Route: ${answer.requirement}.`));
    const table = el("table", { id: "checks" },
      el("caption", { text: "Checks, in the validator's order" }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "Result"), el("th", { scope: "col" }, "Check"), el("th", { scope: "col" }, "Detail"))),
      el("tbody", {}, report.checks.map((c) => el("tr", { class: c.outcome, "data-check": c.name },
        el("td", {}, el("span", { class: `mark ${c.outcome}` }, MARK[c.outcome])),
        el("th", { scope: "row" }, c.name),
        el("td", {}, c.detail)))));
    result.append(el("div", { class: "scroll", role: "region", "aria-label": "Checks", tabindex: 0 }, table));

    const exp = report.claims && typeof report.claims.exp === "number" ? report.claims.exp : null;
    if (exp !== null) {
      const left = el("p", { id: "time-left", role: "timer", "aria-live": "off" });
      const tick = () => {
        const now = Math.floor(Date.now() / 1000);
        left.textContent = now < exp ? `Expires ${seconds(exp - now)}.` : `Expired ${seconds(exp - now)}.`;
        left.className = now < exp ? "time" : "time expired";
      };
      tick();
      ticker = setInterval(tick, 1000);
      result.append(left);
    }

    if (answer.proxy) result.append(renderProxy(answer.proxy));

    if (report.header) {
      result.append(el("h3", { text: "Header" }), el("pre", { id: "token-header" }, JSON.stringify(report.header, null, 2)));
    }
    if (report.claims) {
      result.append(el("h3", { text: report.valid ? "Claims" : "Claims (NOT trusted)" }),
        el("pre", { id: "token-claims" }, JSON.stringify(report.claims, null, 2)));
    }
  }

  function renderProxy(p) {
    const box = el("div", { class: "proxy", id: "proxy-verdict" }, el("h3", { text: "The proxy" }));
    if (p.error) {
      box.append(el("p", { class: "error" }, p.error));
      return box;
    }
    box.append(el("p", {}, p.route
      ? `Route at line ${p.route.line}: ${p.route.path} (${p.route.access}).`
      : "No route matches: the policy's default applies."));
    if (p.forwarded) {
      box.append(el("p", { class: "verdict valid" }, p.public
        ? "Forwarded without a token check (public route), without identity headers."
        : "Forwarded, with these identity headers:"));
      if (p.headers.length > 0) {
        box.append(el("pre", { id: "proxy-headers" }, p.headers.map(([n, v]) => `${n}: ${v}`).join("\n")));
      }
    } else {
      const reason = p.answer ? `${p.answer.error}: ${p.answer.error_description}` : "";
      box.append(el("p", { class: "verdict invalid" }, `Not forwarded: ${p.status} ${reason}`));
      if (p.www_authenticate) box.append(el("pre", {}, `WWW-Authenticate: ${p.www_authenticate}`));
    }
    return box;
  }

  async function inspect(event) {
    event.preventDefault();
    if (ticker) clearInterval(ticker);
    ticker = null;
    const result = $("inspect-result");
    const token = $("inspect-token").value.trim();
    if (!token) return problem(result, "Paste a token first.");
    const body = { token };
    const choice = routeChoice();
    if (choice === "scopes") {
      body.route = {
        kind: "scopes",
        scopes: words($("route-scopes").value),
        any: $("route-any").checked,
        audience: $("route-audience").value.trim() || null,
      };
    } else if (choice === "proxy") {
      body.route = { kind: "proxy", method: $("route-method").value, path: $("route-path").value };
    }
    clear(result).append(el("p", { text: "Checking…" }));
    try {
      renderInspection(await call("/inspect", body), token);
    } catch (e) {
      problem(result, e.message);
    }
  }

  // --- start -----------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", async () => {
    $("mint-form").addEventListener("submit", mint);
    $("inspect-form").addEventListener("submit", inspect);
    for (const radio of document.querySelectorAll('input[name="route"]')) {
      radio.addEventListener("change", showRouteFields);
    }
    showRouteFields();
    try {
      renderGrants(await call("/grants"));
    } catch (e) {
      problem($("grants"), `The grants could not be loaded: ${e.message}`);
    }
  });
})();
