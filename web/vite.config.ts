import { defineConfig } from "vite";

// Static files only: `braid run --dashboard` serves web/dist (see docs/dashboard.md).
// The outDir can be overridden by the build (CMake puts it under build/share).
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist", // the build passes --outDir build/share/braid/web
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
  },
  server: {
    // `npm run dev` next to `braid run --dashboard 127.0.0.1:8080`
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
