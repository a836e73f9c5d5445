// Canvases drawn in CSS pixels yet sharp on high-density screens.

/// Sizes `canvas` to width × height CSS pixels at the device's pixel ratio
/// (its backing store is resized only when that changes), then clears it
/// with a transform that lets drawing use CSS pixels.
export function fitCanvas(canvas, ctx, width, height) {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
}
