// Block Kit to DOM, the subset Slack's own client draws for the blocks mentiondesk sends.
// Interactive elements call back into the page through `ctx`:
//   ctx.onAction(element, block, value)  a button press or a select in an actions/accessory
//   ctx.value(block, element)            the current value of an input (modals)
//   ctx.onInput(block, element, value)   the user changed an input
//   ctx.errors                           {block_id: message} from response_action "errors"
"use strict";

const Blocks = (() => {
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function textObject(obj) {
    if (!obj || typeof obj !== "object") return document.createTextNode("");
    if (obj.type === "mrkdwn") return Mrkdwn.render(obj.text);
    return document.createTextNode(Mrkdwn.plainText(obj.text));
  }

  function optionsOf(element) {
    const options = [...(element.options || [])];
    for (const group of element.option_groups || []) options.push(...(group.options || []));
    return options;
  }

  function button(element, block, ctx) {
    const b = el("button", "bk-button");
    if (element.style === "primary") b.classList.add("primary");
    if (element.style === "danger") b.classList.add("danger");
    b.type = "button";
    b.textContent = Mrkdwn.plainText((element.text || {}).text);
    b.dataset.actionId = element.action_id || "";
    b.addEventListener("click", () => {
      if (element.url && /^https?:\/\//i.test(element.url)) {
        window.open(element.url, "_blank", "noopener");
      }
      ctx.onAction(element, block, element.value);
    });
    return b;
  }

  function select(element, block, ctx, current) {
    const s = el("select", "bk-select");
    s.dataset.actionId = element.action_id || "";
    s.dataset.blockId = block.block_id || "";
    const placeholder = el("option", "", Mrkdwn.plainText((element.placeholder || {}).text) || "Select…");
    placeholder.value = "";
    placeholder.disabled = true;
    s.appendChild(placeholder);
    for (const option of optionsOf(element)) {
      const o = el("option", "", Mrkdwn.plainText((option.text || {}).text));
      o.value = option.value;
      s.appendChild(o);
    }
    s.value = current || "";
    if (!s.value) s.selectedIndex = 0;
    s.addEventListener("change", () => ctx.onSelect(element, block, s.value));
    return s;
  }

  function overflow(element, block, ctx) {
    const s = el("select", "bk-select overflow");
    s.dataset.actionId = element.action_id || "";
    const dots = el("option", "", "⋯");
    dots.value = "";
    s.appendChild(dots);
    for (const option of element.options || []) {
      const o = el("option", "", Mrkdwn.plainText((option.text || {}).text));
      o.value = option.value;
      s.appendChild(o);
    }
    s.addEventListener("change", () => {
      if (s.value) ctx.onAction(element, block, s.value);
      s.value = "";
    });
    return s;
  }

  function image(element, className) {
    const url = element.image_url || "";
    if (!/^https?:\/\//i.test(url)) return el("span", "bk-unsupported", "[image]");
    const img = el("img", className);
    img.src = url;
    img.alt = element.alt_text || "";
    img.loading = "lazy";
    return img;
  }

  // An interactive element inside an actions block or a section accessory.
  function interactive(element, block, ctx) {
    switch (element.type) {
      case "button": return button(element, block, ctx);
      case "static_select": {
        const state = ctx.value(block, element);
        const initial = element.initial_option ? element.initial_option.value : "";
        return select(element, block, ctx, state !== undefined ? state : initial);
      }
      case "overflow": return overflow(element, block, ctx);
      case "image": return image(element, "bk-accessory-image");
      default: return el("span", "bk-unsupported", `[${element.type}]`);
    }
  }

  function textInput(element, block, ctx) {
    const multiline = !!element.multiline;
    const input = el(multiline ? "textarea" : "input", "bk-input");
    if (!multiline) input.type = element.type === "number_input" ? "number" : "text";
    if (multiline) input.rows = 4;
    if (element.max_length) input.maxLength = element.max_length;
    if (element.placeholder) input.placeholder = Mrkdwn.plainText(element.placeholder.text);
    const state = ctx.value(block, element);
    input.value = state !== undefined && state !== null ? state : (element.initial_value || "");
    input.dataset.actionId = element.action_id || "";
    input.dataset.blockId = block.block_id || "";
    input.addEventListener("input", () => ctx.onInput(block, element, input.value));
    if (block.type === "input" && block.dispatch_action && ctx.onDispatch) {
      // Slack sends the text as a block action on each character or on Enter.
      const triggers = ((element.dispatch_action_config || {}).trigger_actions_on) || ["on_enter_pressed"];
      if (triggers.includes("on_character_entered")) {
        input.addEventListener("input", () => ctx.onDispatch(block, element, input.value, true));
      }
      if (triggers.includes("on_enter_pressed") && !multiline) {
        input.addEventListener("keydown", (event) => {
          if (event.key === "Enter") {
            event.preventDefault();
            ctx.onDispatch(block, element, input.value, false);
          }
        });
      }
    }
    return input;
  }

  function choices(element, block, ctx, multiple) {
    const box = el("div", "bk-choices");
    const state = ctx.value(block, element);
    const initial = multiple ? (element.initial_options || []).map((o) => o.value)
      : element.initial_option ? [element.initial_option.value] : [];
    const chosen = new Set(state !== undefined ? [].concat(state || []) : initial);
    const name = `${block.block_id}-${element.action_id}`;
    for (const option of element.options || []) {
      const label = el("label", "bk-choice");
      const input = el("input");
      input.type = multiple ? "checkbox" : "radio";
      input.name = name;
      input.value = option.value;
      input.checked = chosen.has(option.value);
      input.addEventListener("change", () => {
        const picked = [...box.querySelectorAll("input:checked")].map((i) => i.value);
        ctx.onInput(block, element, multiple ? picked : picked[0]);
      });
      label.appendChild(input);
      label.appendChild(textObject(option.text));
      box.appendChild(label);
    }
    return box;
  }

  function inputBlock(block, ctx) {
    const wrap = el("div", "bk-input-block");
    const element = block.element || {};
    const label = el("label", "bk-label");
    label.appendChild(textObject(block.label));
    if (block.optional) label.appendChild(el("span", "optional", " (optional)"));
    wrap.appendChild(label);
    let control;
    switch (element.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input":
        control = textInput(element, block, ctx);
        break;
      case "static_select": {
        const state = ctx.value(block, element);
        const initial = element.initial_option ? element.initial_option.value : "";
        control = select(element, block, ctx, state !== undefined ? state : initial);
        break;
      }
      case "radio_buttons": control = choices(element, block, ctx, false); break;
      case "checkboxes": control = choices(element, block, ctx, true); break;
      default: control = el("span", "bk-unsupported", `[${element.type} input]`);
    }
    control.setAttribute("aria-label", Mrkdwn.plainText((block.label || {}).text));
    wrap.appendChild(control);
    if (block.hint) wrap.appendChild(el("div", "bk-hint", Mrkdwn.plainText(block.hint.text)));
    const error = (ctx.errors || {})[block.block_id];
    if (error) {
      wrap.classList.add("has-error");
      wrap.appendChild(el("div", "bk-error", error));
    }
    return wrap;
  }

  function richText(block) {
    const box = el("div", "bk-rich");
    const walk = (items, parent) => {
      for (const item of items || []) {
        if (item.type === "text") parent.appendChild(document.createTextNode(item.text || ""));
        else if (item.type === "link") {
          const href = /^https?:\/\//i.test(item.url || "") ? item.url : null;
          const a = el(href ? "a" : "span", "", item.text || item.url || "");
          if (href) { a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer"; }
          parent.appendChild(a);
        } else if (item.elements) {
          const child = el(item.type === "rich_text_preformatted" ? "pre" : "div");
          walk(item.elements, child);
          parent.appendChild(child);
        } else if (item.type === "emoji") parent.appendChild(document.createTextNode(Mrkdwn.plainText(`:${item.name}:`)));
        else if (item.type === "user") parent.appendChild(Mrkdwn.render(`<@${item.user_id}>`));
      }
    };
    walk(block.elements, box);
    return box;
  }

  function block(b, ctx) {
    const node = el("div", `bk bk-b-${b.type}`);
    node.dataset.blockId = b.block_id || "";
    switch (b.type) {
      case "section": {
        const body = el("div", "bk-section-body");
        if (b.text) body.appendChild(el("div", "bk-text")).appendChild(textObject(b.text));
        if (b.fields) {
          const grid = el("div", "bk-fields");
          for (const field of b.fields) grid.appendChild(el("div", "bk-field")).appendChild(textObject(field));
          body.appendChild(grid);
        }
        node.appendChild(body);
        if (b.accessory) node.appendChild(el("div", "bk-accessory")).appendChild(interactive(b.accessory, b, ctx));
        break;
      }
      case "header":
        node.appendChild(el("div", "bk-header-text", Mrkdwn.plainText((b.text || {}).text)));
        break;
      case "divider":
        node.appendChild(el("hr"));
        break;
      case "context":
        for (const item of b.elements || []) {
          if (item.type === "image") node.appendChild(image(item, "bk-context-image"));
          else node.appendChild(el("span", "bk-context-item")).appendChild(textObject(item));
        }
        break;
      case "actions":
        for (const item of b.elements || []) node.appendChild(interactive(item, b, ctx));
        break;
      case "image":
        if (b.title) node.appendChild(el("div", "bk-image-title", Mrkdwn.plainText(b.title.text)));
        node.appendChild(image(b, "bk-image"));
        break;
      case "input":
        node.appendChild(inputBlock(b, ctx));
        break;
      case "rich_text":
        node.appendChild(richText(b));
        break;
      case "markdown":
        node.appendChild(Mrkdwn.render(b.text || ""));
        break;
      default:
        node.appendChild(el("span", "bk-unsupported", `[${b.type} block]`));
    }
    return node;
  }

  function render(blocks, ctx) {
    const box = el("div", "bk-blocks");
    for (const b of blocks || []) {
      if (b && typeof b === "object") box.appendChild(block(b, ctx));
    }
    return box;
  }

  return { render };
})();
