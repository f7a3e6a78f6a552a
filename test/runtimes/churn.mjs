// The malloc/free loop of the workers of test/runtimes/: frees or allocates at random one of 512
// blocks (1 in 7 above 128 KiB, a large run), `ops` operations at a call.
export function churner(heap, seed) {
  const live = new Int32Array(512);
  let x = (seed * 2654435761) >>> 0 || 1;
  return (ops) => {
    for (let i = 0; i < ops; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const k = (x >>> 0) % 512;
      if (live[k] !== 0) {
        heap.free(live[k]);
        live[k] = 0;
      } else {
        live[k] = heap.malloc((x >>> 0) % 7 === 0 ? 140_000 : 16 + ((x >>> 3) % 4000));
      }
    }
  };
}
