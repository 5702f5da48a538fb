// npm run build: bundles demo/app.js into demo/dist/app.js and writes demo/dist/index.html,
// which also inlines the bundle, so serving dist/index.html at `/` alone is enough.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: [join(here, 'app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  sourcemap: true,
  outfile: join(dist, 'app.js'),
  logLevel: 'warning',
});
const js = readFileSync(join(dist, 'app.js'), 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
if (/<\/script/i.test(js)) throw new Error('bundle contains </script: cannot inline');
const html = readFileSync(join(here, 'index.html'), 'utf8');
const tag = '<script type="module" src="app.js"></script>';
if (!html.includes(tag)) throw new Error(`index.html lacks ${tag}`);
writeFileSync(join(dist, 'index.html'), html.replace(tag, () => `<script type="module">\n${js}</script>`));
console.log(`built ${join(dist, 'app.js')} and ${join(dist, 'index.html')}`);
