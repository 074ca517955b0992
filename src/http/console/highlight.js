// A small Python highlighter for the console's editor: one pass of one regular expression.
const KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else except " +
  "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case").split(" "));
const BUILTINS = new Set(("abs all any bool bytes dict enumerate filter float int isinstance len list map max min " +
  "open print range repr round set sorted str sum tuple type zip request pq").split(" "));
const TOKEN = new RegExp([
  String.raw`(?<com>#[^\n]*)`,
  String.raw`(?<str>[rRbBuUfF]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?))`,
  String.raw`(?<dec>^[ \t]*@[\w.]+)`,
  String.raw`(?<num>\b(?:0[xob][\da-f_]+|\d[\d_]*(?:\.\d*)?(?:e[+-]?\d+)?j?)\b)`,
  String.raw`(?<word>[A-Za-z_]\w*)`,
].join("|"), "gmi");

function escape(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** HTML for `source`, every token wrapped in a span of its class. */
export function highlight(source) {
  let out = "", last = 0, previous = "";
  for (const match of source.matchAll(TOKEN)) {
    out += escape(source.slice(last, match.index));
    const text = match[0], groups = match.groups;
    let cls = null;
    if (groups.com !== undefined) cls = "com";
    else if (groups.str !== undefined) cls = "str";
    else if (groups.dec !== undefined) cls = "dec";
    else if (groups.num !== undefined) cls = "num";
    else if (KEYWORDS.has(text)) cls = "kw";
    else if (previous === "def" || previous === "class") cls = "fn";
    else if (BUILTINS.has(text)) cls = "bi";
    out += cls ? `<span class="tok-${cls}">${escape(text)}</span>` : escape(text);
    if (groups.word !== undefined) previous = text;
    last = match.index + text.length;
  }
  return out + escape(source.slice(last)) + "\n";
}

/** Turns a textarea over a <code> into an editor: highlighting, Tab indents, scroll kept in step. */
export function attachEditor(textarea, view) {
  const render = () => { view.innerHTML = highlight(textarea.value); };
  textarea.addEventListener("input", render);
  textarea.addEventListener("scroll", () => {
    view.parentElement.scrollTop = textarea.scrollTop;
    view.parentElement.scrollLeft = textarea.scrollLeft;
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    event.preventDefault();
    const { selectionStart: start, selectionEnd: end, value } = textarea;
    textarea.value = value.slice(0, start) + "    " + value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + 4;
    render();
  });
  return { set(text) { textarea.value = text; render(); }, get: () => textarea.value };
}
