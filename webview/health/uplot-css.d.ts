// uPlot's style sheet, imported as text (esbuild's `with { type: 'text' }`) and adopted as a
// constructed style sheet: the page's Content-Security-Policy allows no <link>ed or inline styles
// from the package.
declare module 'uplot/dist/uPlot.min.css' {
  const css: string;
  export default css;
}
