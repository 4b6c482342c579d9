// The sandbox page: a small Slack client for one workspace, seen as one person at a time.
// It long-polls /sandbox/state and sends every click, selection, submission and command to
// /sandbox/act, where the emulator turns it into the signed request Slack would send.
"use strict";

(() => {
  const AGENT = "U0AGENT1";
  const $ = (id) => document.getElementById(id);
  const ui = {
    user: new URLSearchParams(location.search).get("as") || AGENT,
    channel: "C0MENTIONS",
    state: null,
    drafts: {},          // view id -> {block_id: {action_id: value}} typed but not yet sent
    keys: {},            // what each region was last drawn from, to redraw only on change
    timers: {},          // debounced dispatch of typed text, per input
    seenEphemerals: {},  // per channel, how many of my ephemeral messages were drawn
    poll: null,
    lostContact: false,
    pendingConfirm: null,
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function userName(id) {
    const user = ui.state && ui.state.users.find((u) => u.id === id);
    return user ? (user.is_bot ? user.real_name || user.name : user.name) : id;
  }

  function timeOf(ts) {
    const date = new Date(parseFloat(ts) * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // -- talking to the sandbox ------------------------------------------------------------

  async function act(body) {
    try {
      const response = await fetch("/sandbox/act", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: ui.user, ...body }),
      });
      const answer = await response.json();
      if (!answer.ok) flash(answer.error || "the action failed");
      return answer;
    } catch (error) {
      flash(`the sandbox did not answer (${error})`);
      return { ok: false };
    }
  }

  async function loop() {
    for (;;) {
      const controller = new AbortController();
      ui.poll = controller;
      const since = ui.state && ui.state.me === ui.user ? `&since=${ui.state.version}` : "";
      try {
        const response = await fetch(`/sandbox/state?user=${encodeURIComponent(ui.user)}${since}`,
          { signal: controller.signal, cache: "no-store" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const state = await response.json();
        ui.lostContact = false;
        if (state.me === ui.user) {
          ui.state = state;
          draw();
        }
      } catch (error) {
        if (controller.signal.aborted) continue;
        ui.lostContact = true;
        drawProblems();
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  function refresh() {
    if (ui.poll) ui.poll.abort();
  }

  // -- drawing ---------------------------------------------------------------------------

  function changed(region, value) {
    const key = JSON.stringify(value);
    if (ui.keys[region] === key) return false;
    ui.keys[region] = key;
    return true;
  }

  function draw() {
    const s = ui.state;
    Mrkdwn.setUsers(Object.fromEntries(s.users.map((u) => [u.id, u])));
    drawSwitcher();
    drawProblems();
    drawChannels();
    drawMain();
    drawNetworks();
    drawModal();
  }

  function drawSwitcher() {
    const people = ui.state.users.filter((u) => !u.is_bot);
    if (!changed("switcher", [people, ui.user])) return;
    const select = $("as-user");
    select.replaceChildren();
    for (const person of people) {
      const option = el("option", "", `${person.name} (${person.role})`);
      option.value = person.id;
      select.appendChild(option);
    }
    select.value = ui.user;
  }

  function drawProblems() {
    const s = ui.state || { violations: [], incidents: [] };
    const lines = [];
    if (ui.lostContact) lines.push({ kind: "page", text: "Lost contact with the sandbox; retrying…" });
    for (const v of s.violations) lines.push({ kind: "Slack would refuse", text: v });
    for (const i of s.incidents) lines.push({ kind: i.kind, text: i.text });
    if (!changed("problems", lines)) return;
    const box = $("problems");
    box.replaceChildren();
    box.hidden = lines.length === 0;
    if (!lines.length) return;
    box.appendChild(el("div", "problems-title", `⚠ ${lines.length} problem${lines.length > 1 ? "s" : ""} — the bot sent or received something Slack would not accept`));
    const list = el("ul");
    for (const line of lines.slice(-12)) {
      const item = el("li");
      item.appendChild(el("b", "", `${line.kind}: `));
      item.appendChild(document.createTextNode(line.text));
      list.appendChild(item);
    }
    box.appendChild(list);
  }

  function drawChannels() {
    const s = ui.state;
    const summary = s.channels.map((c) => [c.id, c.name, c.messages.length, c.ephemerals.length]);
    if (!changed("channels", [summary, ui.channel])) return;
    const list = $("channel-list");
    list.replaceChildren();
    for (const channel of s.channels) {
      const item = el("button", "nav-item");
      item.dataset.target = channel.id;
      item.setAttribute("data-testid", `nav-${channel.is_im ? "dm" : channel.name}`);
      item.appendChild(document.createTextNode(channel.is_im ? channel.name : `# ${channel.name}`));
      const count = channel.messages.length + channel.ephemerals.length;
      if (count) item.appendChild(el("span", "count", String(count)));
      if (channel.id === ui.channel) item.classList.add("active");
      item.addEventListener("click", () => select(channel.id));
      list.appendChild(item);
    }
    document.querySelector('[data-target="home"]').classList.toggle("active", ui.channel === "home");
  }

  function select(target) {
    ui.channel = target;
    ui.keys = {};
    if (target === "home") act({ kind: "home" });
    draw();
  }

  function messageCtx(channel, ts) {
    return {
      value: () => undefined,
      onInput: () => {},
      onAction: (element, block, value) => press(element, () => act({
        kind: "click", channel, ts, action_id: element.action_id,
        block_id: block.block_id, value,
      })),
      onSelect: (element, block, value) => act({
        kind: "click", channel, ts, action_id: element.action_id,
        block_id: block.block_id, value,
      }),
    };
  }

  function messageNode(channel, message, ephemeral) {
    const node = el("div", "message");
    node.setAttribute("data-testid", ephemeral ? "ephemeral" : "message");
    node.dataset.ts = message.ts;
    const head = el("div", "message-head");
    head.appendChild(el("span", "author", ephemeral ? "mentiondesk" : userName(message.user)));
    if (ephemeral || message.is_bot) head.appendChild(el("span", "app-badge", "APP"));
    head.appendChild(el("span", "time", timeOf(message.ts)));
    if (message.edited) head.appendChild(el("span", "edited", "(edited)"));
    if (ephemeral) head.appendChild(el("span", "only-you", "Only visible to you"));
    node.appendChild(head);
    if (message.blocks && message.blocks.length) {
      node.appendChild(Blocks.render(message.blocks, messageCtx(channel, message.ts)));
    } else {
      node.appendChild(el("div", "message-text")).appendChild(Mrkdwn.render(message.text));
    }
    for (const file of message.files || []) {
      node.appendChild(el("div", "file", `📎 ${file.title || file.name} (${file.size} bytes)`));
    }
    if (message.replies && message.replies.length) {
      const thread = el("div", "thread");
      thread.setAttribute("data-testid", "thread");
      thread.appendChild(el("div", "thread-title", `${message.replies.length} ${message.replies.length === 1 ? "reply" : "replies"}`));
      for (const reply of message.replies) thread.appendChild(messageNode(channel, reply, false));
      node.appendChild(thread);
    }
    return node;
  }

  function drawMain() {
    const s = ui.state;
    if (ui.channel === "home") {
      if (!changed("main", ["home", s.home])) return;
      $("channel-head").textContent = "Home · mentiondesk";
      const box = $("messages");
      box.replaceChildren();
      if (!s.home) {
        box.appendChild(el("div", "empty", "Opening the App Home…"));
        return;
      }
      const home = el("div", "home");
      home.setAttribute("data-testid", "home");
      home.appendChild(Blocks.render(s.home.blocks, viewCtx(s.home)));
      box.appendChild(home);
      return;
    }
    const channel = s.channels.find((c) => c.id === ui.channel) || s.channels[0];
    if (!channel) return;
    ui.channel = channel.id;
    if (!changed("main", [channel, s.users.length])) return;
    $("channel-head").textContent = channel.is_im ? channel.name : `# ${channel.name}`;
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.replaceChildren();
    const items = [
      ...channel.messages.map((m) => ({ ts: m.ts, node: () => messageNode(channel.id, m, false) })),
      ...channel.ephemerals.map((e) => ({ ts: e.ts, node: () => messageNode(channel.id, e, true) })),
    ].sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
    if (!items.length) box.appendChild(el("div", "empty", "Nothing here yet."));
    for (const item of items) box.appendChild(item.node());
    // An answer only you can see (a slash command's) is scrolled into view when it arrives.
    const seen = ui.seenEphemerals[channel.id] || 0;
    ui.seenEphemerals[channel.id] = channel.ephemerals.length;
    if (atBottom || channel.ephemerals.length > seen) box.scrollTop = box.scrollHeight;
  }

  function drawNetworks() {
    const demo = ui.state.demo;
    if (!changed("networks", demo)) return;
    const list = $("network-list");
    list.replaceChildren();
    if (!demo.length) list.appendChild(el("div", "empty", "No demo posts yet."));
    for (const network of demo) {
      const panel = el("section", `network network-${network.network}`);
      panel.setAttribute("data-testid", `network-${network.network}`);
      panel.appendChild(el("div", "network-name", network.network));
      for (const post of network.posts) {
        const card = el("div", "post");
        card.setAttribute("data-testid", "post");
        const head = el("div", "post-head");
        head.appendChild(el("span", "post-name", post.name || post.handle));
        if (post.verified) head.appendChild(el("span", "verified", "✓"));
        head.appendChild(el("span", "post-handle", post.handle));
        if (post.followers) head.appendChild(el("span", "post-followers", `${post.followers.toLocaleString()} followers`));
        card.appendChild(head);
        card.appendChild(el("div", "post-text", post.text));
        for (const reply of post.replies) {
          const r = el("div", "post-reply");
          r.setAttribute("data-testid", "demo-reply");
          r.appendChild(el("div", "post-head", "↳ Reply from the brand"));
          r.appendChild(el("div", "post-text", reply.text));
          card.appendChild(r);
        }
        panel.appendChild(card);
      }
      list.appendChild(panel);
    }
  }

  // -- modals ----------------------------------------------------------------------------

  function typed(viewId) {
    return ui.drafts[viewId] || (ui.drafts[viewId] = {});
  }

  function stateValue(view, block, element) {
    const entry = ((view.values || {})[block.block_id] || {})[element.action_id];
    if (!entry) return undefined;
    if ("value" in entry) return entry.value;
    if ("selected_option" in entry) return entry.selected_option ? entry.selected_option.value : "";
    if ("selected_options" in entry) return entry.selected_options.map((o) => o.value);
    return undefined;
  }

  function viewCtx(view) {
    const mine = typed(view.id);
    return {
      errors: view.errors,
      value: (block, element) => {
        const local = (mine[block.block_id] || {})[element.action_id];
        return local !== undefined ? local : stateValue(view, block, element);
      },
      onInput: (block, element, value) => {
        (mine[block.block_id] || (mine[block.block_id] = {}))[element.action_id] = value;
      },
      onAction: (element, block, value) => press(element, () => act({
        kind: "view_click", view_id: view.id, action_id: element.action_id,
        block_id: block.block_id, value, values: mine,
      })),
      onDispatch: (block, element, value, debounce) => {
        const key = `${view.id}/${block.block_id}/${element.action_id}`;
        clearTimeout(ui.timers[key]);
        // Each character: the emulator decides, as Slack does, whether the app hears of it;
        // Enter: the block action is sent as it is for a select.
        const send = () => act({ kind: debounce ? "view_type" : "view_select", view_id: view.id,
                                 action_id: element.action_id, block_id: block.block_id, value,
                                 values: mine });
        if (debounce) ui.timers[key] = setTimeout(send, 350);
        else send();
      },
      onSelect: (element, block, value) => {
        (mine[block.block_id] || (mine[block.block_id] = {}))[element.action_id] = value;
        if (block.type !== "input" || block.dispatch_action) {
          act({ kind: "view_select", view_id: view.id, action_id: element.action_id,
                block_id: block.block_id, value, values: mine });
        }
      },
    };
  }

  function drawModal() {
    const view = ui.state.modal;
    if (!changed("modal", view && [view.id, view.hash, view.errors, ui.state.modal_depth])) return;
    const layer = $("modal-layer");
    // The bot may rebuild the modal while someone types (a live preview): keep their place.
    const active = document.activeElement;
    const focus = active && layer.contains(active) && active.dataset.blockId !== undefined
      ? { block: active.dataset.blockId, action: active.dataset.actionId,
          start: active.selectionStart, end: active.selectionEnd }
      : null;
    layer.replaceChildren();
    layer.hidden = !view;
    if (!view) return;
    if (focus) queueMicrotask(() => restoreFocus(layer, focus));
    const modal = el("form", "modal");
    modal.setAttribute("data-testid", "modal");
    modal.setAttribute("role", "dialog");
    modal.setAttribute("aria-label", view.title);
    const head = el("div", "modal-head");
    head.appendChild(el("span", "modal-title", view.title));
    if (ui.state.modal_depth > 1) head.appendChild(el("span", "depth", `${ui.state.modal_depth} deep`));
    modal.appendChild(head);
    const body = el("div", "modal-body");
    body.appendChild(Blocks.render(view.blocks, viewCtx(view)));
    const general = Object.entries(view.errors || {}).filter(([id]) => !view.blocks.some((b) => b.block_id === id));
    for (const [id, text] of general) body.appendChild(el("div", "bk-error", `${id}: ${text}`));
    modal.appendChild(body);
    const foot = el("div", "modal-foot");
    const cancel = el("button", "bk-button", view.close || "Cancel");
    cancel.type = "button";
    cancel.setAttribute("data-testid", "modal-cancel");
    cancel.addEventListener("click", () => act({ kind: "close_view", view_id: view.id }));
    foot.appendChild(cancel);
    if (view.submit) {
      const submit = el("button", "bk-button primary", view.submit);
      submit.type = "submit";
      submit.setAttribute("data-testid", "modal-submit");
      foot.appendChild(submit);
    }
    modal.appendChild(foot);
    modal.addEventListener("submit", (event) => {
      event.preventDefault();
      const missing = view.blocks.filter((b) => b.type === "input" && !b.optional && isEmpty(viewCtx(view).value(b, b.element || {})));
      if (missing.length) {
        flash(`Please fill in: ${missing.map((b) => Mrkdwn.plainText((b.label || {}).text)).join(", ")}`);
        return;
      }
      act({ kind: "submit", view_id: view.id, values: typed(view.id) });
    });
    layer.appendChild(modal);
  }

  function restoreFocus(layer, focus) {
    const target = [...layer.querySelectorAll("[data-block-id]")].find(
      (node) => node.dataset.blockId === focus.block && node.dataset.actionId === focus.action);
    if (!target || !target.focus) return;
    target.focus();
    if (typeof focus.start === "number" && target.setSelectionRange) {
      try { target.setSelectionRange(focus.start, focus.end); } catch (error) { /* not text */ }
    }
  }

  function isEmpty(value) {
    return value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length);
  }

  // -- confirm dialogs and notices -------------------------------------------------------

  function press(element, send) {
    const confirm = element.confirm;
    if (!confirm) {
      send();
      return;
    }
    const layer = $("confirm-layer");
    layer.replaceChildren();
    const box = el("div", "modal confirm");
    box.setAttribute("data-testid", "confirm");
    box.setAttribute("role", "alertdialog");
    box.appendChild(el("div", "modal-head")).appendChild(el("span", "modal-title", Mrkdwn.plainText((confirm.title || {}).text) || "Are you sure?"));
    box.appendChild(el("div", "modal-body")).appendChild(Mrkdwn.render((confirm.text || {}).text || ""));
    const foot = el("div", "modal-foot");
    const no = el("button", "bk-button", Mrkdwn.plainText((confirm.deny || {}).text) || "Cancel");
    const yes = el("button", `bk-button ${confirm.style === "danger" ? "danger" : "primary"}`,
      Mrkdwn.plainText((confirm.confirm || {}).text) || "Yes");
    no.type = yes.type = "button";
    yes.setAttribute("data-testid", "confirm-yes");
    no.addEventListener("click", () => { layer.hidden = true; });
    yes.addEventListener("click", () => { layer.hidden = true; send(); });
    foot.append(no, yes);
    box.appendChild(foot);
    layer.appendChild(box);
    layer.hidden = false;
  }

  function flash(text) {
    const note = el("div", "flash", text);
    note.setAttribute("role", "alert");
    document.body.appendChild(note);
    setTimeout(() => note.remove(), 6000);
  }

  // -- wiring ----------------------------------------------------------------------------

  $("as-user").addEventListener("change", (event) => {
    ui.user = event.target.value;
    ui.keys = {};
    ui.state = null;
    const url = new URL(location.href);
    url.searchParams.set("as", ui.user);
    history.replaceState(null, "", url);
    if (ui.channel === "home") act({ kind: "home" });
    refresh();
  });
  document.querySelector('[data-target="home"]').addEventListener("click", () => select("home"));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const raw = $("command").value.trim();
    const match = /^(\/\S+)\s*(.*)$/s.exec(raw);
    if (!match) {
      flash("Type a slash command, for example /mentions status");
      return;
    }
    const channel = ui.channel === "home" || !ui.channel ? "C0MENTIONS" : ui.channel;
    act({ kind: "command", command: match[1], text: match[2], channel });
  });
  loop();
})();
