// ASPIRE web's program editor: CodeMirror 6 with Python highlighting, completion and hover docs fed
// from the robot API reference (JSON served by the site), and a linter fed by the site's policy check.
// Built once into aspire-codemirror.js (see README.md); exposes window.AspireCodeMirror.
import { EditorState, Compartment } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection, hoverTooltip,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { indentUnit, syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput } from "@codemirror/language";
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { linter, lintGutter, forceLinting } from "@codemirror/lint";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { python, pythonLanguage } from "@codemirror/lang-python";

function docNode(entry) {
  const box = document.createElement("div");
  box.className = "cm-api-doc";
  const sig = document.createElement("code");
  sig.textContent = entry.signature;
  const doc = document.createElement("pre");
  doc.textContent = entry.doc || "";
  box.appendChild(sig);
  box.appendChild(doc);
  return box;
}

/* Replace ``textarea`` with an editor that keeps the textarea's value in sync (the form still posts it).
   options: reference() -> [{name, signature, doc}], check(text) -> Promise<[{line, col, message, severity}]>,
   onChange(text). Returns {view, setValue(text), getValue(), setReference(list), relint()}. */
export function createEditor(textarea, options) {
  options = options || {};
  let reference = options.reference || [];
  const byName = () => new Map(reference.map((e) => [e.name, e]));

  const apiCompletions = (context) => {
    const word = context.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    return {
      from: word.from,
      options: reference.map((e) => ({
        label: e.name, type: "function", detail: e.signature.slice(e.name.length),
        info: () => docNode(e),
      })),
      validFor: /^[A-Za-z0-9_]*$/,
    };
  };

  const apiHover = hoverTooltip((view, pos) => {
    const { from, to, text } = view.state.doc.lineAt(pos);
    let start = pos, end = pos;
    while (start > from && /\w/.test(text[start - from - 1])) start--;
    while (end < to && /\w/.test(text[end - from])) end++;
    const entry = byName().get(text.slice(start - from, end - from));
    if (!entry) return null;
    return { pos: start, end, above: true, create: () => ({ dom: docNode(entry) }) };
  });

  const policyLint = linter(async (view) => {
    if (!options.check) return [];
    const text = view.state.doc.toString();
    let problems;
    try { problems = await options.check(text); } catch (e) { return []; }
    if (view.state.doc.toString() !== text) return [];
    const doc = view.state.doc;
    return (problems || []).map((p) => {
      const line = doc.line(Math.min(Math.max(p.line || 1, 1), doc.lines));
      const from = Math.min(line.from + (p.col || 0), line.to);
      return { from, to: line.to > from ? line.to : from, severity: p.severity || "error", message: p.message };
    });
  }, { delay: options.delay || 600 });

  const readOnly = new Compartment();
  const view = new EditorView({
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(), highlightActiveLineGutter(), history(), drawSelection(), indentOnInput(),
        bracketMatching(), closeBrackets(), highlightActiveLine(), highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }), indentUnit.of("    "),
        python(), pythonLanguage.data.of({ autocomplete: apiCompletions }), autocompletion(),
        apiHover, policyLint, lintGutter(), readOnly.of(EditorState.readOnly.of(false)),
        EditorView.editorAttributes.of({ class: "program-editor" }),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap,
          ...completionKeymap, indentWithTab]),
        EditorView.updateListener.of((u) => {
          if (!u.docChanged) return;
          textarea.value = u.state.doc.toString();
          if (options.onChange && !u.transactions.every((t) => t.annotation(programmatic))) options.onChange(textarea.value);
        }),
      ],
    }),
  });
  textarea.parentNode.insertBefore(view.dom, textarea.nextSibling);
  textarea.hidden = true;
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, annotations: programmatic.of(true) });
    },
    setReference(list) { reference = list || []; },
    relint() { forceLinting(view); },
  };
}

import { Annotation } from "@codemirror/state";
const programmatic = Annotation.define();

window.AspireCodeMirror = { createEditor };
