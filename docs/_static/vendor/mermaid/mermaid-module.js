// The vendored mermaid (mermaid.min.js, the classic build, beside this file) as the ES module
// sphinxcontrib-mermaid imports: the site loads nothing from a CDN, so its diagrams draw on an
// intranet without internet access. Loaded only on the pages that have a diagram.
const script = document.createElement("script");
script.src = new URL("./mermaid.min.js", import.meta.url).href;
await new Promise((resolve, reject) => {
  script.onload = resolve;
  script.onerror = () => reject(new Error(`cannot load ${script.src}`));
  document.head.appendChild(script);
});

export default globalThis.mermaid;
