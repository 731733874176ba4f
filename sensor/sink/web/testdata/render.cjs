// Runs the dashboard's rendering functions (assets/app.js) under node with
// a minimal DOM that records every way a string could become markup
// (innerHTML and the like, event-handler or URL attributes, element names
// that are not plain tags), and prints what was rendered as JSON:
//   node render.cjs app.js recent.json stats.json
// recent.json is what /api/recent answers, stats.json what /api/stats does.
'use strict';
const fs = require('fs');
const vm = require('vm');

const [appPath, recentPath, statsPath] = process.argv.slice(2);
const violations = [];

class TextNode {
  constructor(s) { this.data = String(s); }
  get textContent() { return this.data; }
}

class Element {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.attributes = {};
    this.className = '';
    this.title = '';
  }
  appendChild(c) {
    if (!(c instanceof Element) && !(c instanceof TextNode)) {
      violations.push('appendChild of a ' + typeof c + ', not a node');
      throw new Error('appendChild of a non-node');
    }
    this.children.push(c);
    return c;
  }
  removeChild(c) {
    const i = this.children.indexOf(c);
    if (i >= 0) this.children.splice(i, 1);
    return c;
  }
  get firstChild() { return this.children[0] || null; }
  get textContent() { return this.children.map((c) => c.textContent).join(''); }
  set textContent(v) { this.children = [new TextNode(v)]; }
  setAttribute(name, value) {
    if (/^on/i.test(name) || /^(src|href|srcdoc|style|action|formaction)$/i.test(name)) {
      violations.push('setAttribute ' + name);
    }
    this.attributes[name] = String(value);
  }
  addEventListener() {}
  insertAdjacentHTML() { violations.push('insertAdjacentHTML'); throw new Error('insertAdjacentHTML'); }
}
for (const prop of ['innerHTML', 'outerHTML']) {
  Object.defineProperty(Element.prototype, prop, {
    get() { violations.push('read ' + prop); return ''; },
    set() { violations.push('set ' + prop); throw new Error('set ' + prop); },
  });
}

const document = {
  createElement(tag) {
    if (!/^[a-z][a-z0-9]*$/.test(String(tag))) violations.push('createElement ' + JSON.stringify(tag));
    return new Element(String(tag));
  },
  createTextNode(s) { return new TextNode(s); },
  write() { violations.push('document.write'); },
  writeln() { violations.push('document.writeln'); },
};

// The script gets no document or EventSource on its global, so it only
// defines its functions and does not start.
const sandbox = vm.createContext({ console });
vm.runInContext(fs.readFileSync(appPath, 'utf8'), sandbox, { filename: 'app.js' });
const D = sandbox.OISPDash;

const recent = JSON.parse(fs.readFileSync(recentPath, 'utf8'));
const stats = JSON.parse(fs.readFileSync(statsPath, 'utf8'));
const model = new D.Model();
for (const { seq, event } of recent.events) model.add(seq, event);

const tbody = document.createElement('tbody');
const interactions = [];
for (const it of model.interactions.values()) {
  tbody.appendChild(D.renderRow(document, it, true));
  tbody.appendChild(D.renderDetail(document, it, 9));
  interactions.push({
    key: it.key,
    request: it.req ? it.req.event_id : '',
    response: it.resp ? it.resp.event_id : '',
    tool_calls: it.toolCalls.map((e) => e.event_id),
    tool_results: it.toolResults.map((e) => e.event_id),
    summary: D.summarize(it),
  });
}
for (const rec of model.system) {
  tbody.appendChild(D.renderSystemRow(document, rec, true));
  tbody.appendChild(D.renderSystemDetail(document, rec, 4));
}
const counters = document.createElement('div');
D.renderCounters(document, counters, stats, { missed: 0 });
tbody.appendChild(counters);

const tags = new Set();
const texts = [];
(function walk(n) {
  if (n instanceof TextNode) { texts.push(n.data); return; }
  tags.add(n.tagName);
  for (const a of Object.keys(n.attributes)) violations.push('attribute ' + a);
  n.children.forEach(walk);
})(tbody);

process.stdout.write(JSON.stringify({
  violations, tags: [...tags].sort(), texts, interactions,
  system: model.system.length,
}));
