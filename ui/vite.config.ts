import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// `npm run dev` proxies the API to a running `rollcall serve` (dashboard port).
const backend = process.env.ROLLCALL_DASHBOARD ?? 'http://127.0.0.1:8788';

export default defineConfig({
  base: './',
  plugins: [svelte()],
  server: {
    proxy: {
      '/api': {
        target: backend,
        changeOrigin: true,
        // Pass the event stream's headers on at once (the stream sends nothing until a change).
        configure: (proxy) => {
          // The dashboard refuses writes from other origins: in dev, the page's origin is Vite's.
          proxy.on('proxyReq', (proxyReq) => {
            if (proxyReq.getHeader('origin')) proxyReq.setHeader('origin', new URL(backend).origin);
          });
          proxy.on('proxyRes', (proxyRes, _req, res) => {
            if (String(proxyRes.headers['content-type'] ?? '').startsWith('text/event-stream')) {
              // After the proxy has copied the status and headers.
              setImmediate(() => res.flushHeaders());
            }
          });
        },
      },
      '/login': { target: backend, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
