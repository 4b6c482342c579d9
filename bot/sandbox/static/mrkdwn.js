// Slack mrkdwn to DOM nodes. Text written by customers reaches this page inside the bot's
// messages, so nothing here ever parses HTML: every piece becomes a text node or an element
// built with createElement, and links keep only http(s) and mailto addresses.
"use strict";

const Mrkdwn = (() => {
  const ENTITIES = { "&lt;": "<", "&gt;": ">", "&amp;": "&" };
  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", star: "⭐",
    rotating_light: "🚨", hourglass: "⌛", hourglass_flowing_sand: "⏳", speech_balloon: "💬",
    bell: "🔔", lock: "🔒", mag: "🔍", chart_with_upwards_trend: "📈", fire: "🔥",
    tada: "🎉", eyes: "👀", pencil: "📝", memo: "📝", inbox_tray: "📥", outbox_tray: "📤",
    link: "🔗", no_entry: "⛔", large_blue_circle: "🔵", red_circle: "🔴",
    large_green_circle: "🟢", large_yellow_circle: "🟡", arrows_counterclockwise: "🔄",
    busts_in_silhouette: "👥", bust_in_silhouette: "👤", thumbsup: "👍", "+1": "👍",
    white_circle: "⚪", black_circle: "⚫", large_orange_circle: "🟠", no_entry_sign: "🚫",
    raising_hand: "🙋", sparkles: "✨", rocket: "🚀", email: "📧", envelope: "✉️",
    clock1: "🕐", alarm_clock: "⏰", heavy_exclamation_mark: "❗", exclamation: "❗",
    question: "❓", repeat: "🔁", triangular_flag_on_post: "🚩", zap: "⚡",
    loudspeaker: "📢", mega: "📣", bar_chart: "📊", calendar: "📅", label: "🏷️",
    arrow_right: "➡️", leftwards_arrow_with_hook: "↩️", speaking_head_in_silhouette: "🗣️",
    no_bell: "🔕", construction: "🚧", sos: "🆘", crown: "👑", star2: "🌟",
    green_heart: "💚", broken_heart: "💔", rage: "😡", smile: "😄", slightly_smiling_face: "🙂",
  };
  const MARK = "\uE000"; // private-use character standing for an extracted <…> token
  let users = {};

  function decode(text) {
    return text.replace(/&(lt|gt|amp);/g, (m) => ENTITIES[m]);
  }

  function emoji(text) {
    return text.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);
  }

  function safeHref(url) {
    return /^(https?:\/\/|mailto:)/i.test(url) ? url : null;
  }

  // One <…> token: a link, a user or channel mention, or a special mention.
  function tokenNode(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? inner.slice(bar + 1) : "";
    if (target.startsWith("@")) {
      const user = users[target.slice(1)];
      return mention("@" + (user ? user.name : label || target.slice(1)));
    }
    if (target.startsWith("#")) {
      return mention("#" + (label || target.slice(1)));
    }
    if (target.startsWith("!date^")) {
      const seconds = Number(target.split("^")[1]);
      const when = Number.isFinite(seconds) ? new Date(seconds * 1000).toLocaleString() : "";
      const span = document.createElement("time");
      span.textContent = label ? decode(label) : when;
      if (when) span.title = when;
      return span;
    }
    if (target.startsWith("!subteam^")) {
      return mention(label ? decode(label) : "@" + target.slice(9));
    }
    if (target.startsWith("!")) {
      const name = target.slice(1).split("^")[0];
      return mention("@" + (label ? decode(label).replace(/^@/, "") : name));
    }
    const href = safeHref(decode(target));
    if (!href) {
      return document.createTextNode(decode(label || target));
    }
    const a = document.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = decode(label || target);
    return a;
  }

  function mention(text) {
    const span = document.createElement("span");
    span.className = "mention";
    span.textContent = text;
    return span;
  }

  // Text with MARK placeholders: text nodes around the extracted tokens.
  function plain(text, tokens, parent) {
    const parts = text.split(MARK);
    parts.forEach((part, i) => {
      if (i > 0) {
        const token = tokens.shift();
        parent.appendChild(token !== undefined ? tokenNode(token) : document.createTextNode(""));
      }
      if (part) parent.appendChild(document.createTextNode(emoji(decode(part))));
    });
  }

  const STYLES = [
    { re: /`([^`\n]+)`/, tag: "code", literal: true },
    { re: /(^|[^\w*])\*([^*\n]+?)\*(?![\w*])/, tag: "b" },
    { re: /(^|[^\w_])_([^_\n]+?)_(?![\w_])/, tag: "i" },
    { re: /(^|[^\w~])~([^~\n]+?)~(?![\w~])/, tag: "s" },
  ];

  // Bold, italic, strike and inline code, nested as Slack allows.
  function inline(text, tokens, parent) {
    let best = null;
    for (const style of STYLES) {
      const m = style.re.exec(text);
      if (!m) continue;
      const lead = style.literal ? "" : m[1];
      const start = m.index + lead.length;
      if (!best || start < best.start) {
        best = { style, start, end: m.index + m[0].length, body: style.literal ? m[1] : m[2] };
      }
    }
    if (!best) {
      plain(text, tokens, parent);
      return;
    }
    plain(text.slice(0, best.start), tokens, parent);
    const el = document.createElement(best.style.tag);
    if (best.style.literal) {
      plain(best.body, tokens, el);
    } else {
      inline(best.body, tokens, el);
    }
    parent.appendChild(el);
    inline(text.slice(best.end), tokens, parent);
  }

  function lines(text, tokens, parent) {
    const rows = text.split("\n");
    let quote = null;
    rows.forEach((row, i) => {
      const quoted = /^(>|&gt;)/.exec(row);
      if (quoted) {
        if (!quote) {
          quote = document.createElement("blockquote");
          parent.appendChild(quote);
        } else {
          quote.appendChild(document.createElement("br"));
        }
        inline(row.slice(quoted[0].length).replace(/^ /, ""), tokens, quote);
        return;
      }
      quote = null;
      if (i > 0 && !/^(>|&gt;)/.test(rows[i - 1] || "")) parent.appendChild(document.createElement("br"));
      inline(row, tokens, parent);
    });
  }

  // A mrkdwn string as a DOM fragment.
  function render(text) {
    const fragment = document.createDocumentFragment();
    if (typeof text !== "string" || !text) return fragment;
    const tokens = [];
    const marked = text.replace(/\uE000/g, "").replace(/<([^<>\n]+)>/g, (m, inner) => {
      tokens.push(inner);
      return MARK;
    });
    const pieces = marked.split("```");
    pieces.forEach((piece, i) => {
      if (i % 2 === 1 && i < pieces.length - 1) {
        const pre = document.createElement("pre");
        plain(piece.replace(/^\n/, ""), tokens, pre);
        fragment.appendChild(pre);
      } else {
        lines(i % 2 === 1 ? "```" + piece : piece, tokens, fragment);
      }
    });
    return fragment;
  }

  // Plain text objects: entities decoded, emoji names shown, nothing else interpreted.
  function plainText(text) {
    return emoji(decode(typeof text === "string" ? text : ""));
  }

  return { render, plainText, setUsers: (map) => { users = map; } };
})();
