# Orders: build records, serialise to JSON and back, group and sort; strings, dicts, lists.
import json, random
random.seed(20261201)
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(3, 12))) for _ in range(3000)]
recs = []
for i in range(60000):
    recs.append({'id': i, 'name': ' '.join(random.choice(words) for _ in range(2)).title(),
                 'tags': sorted(set(random.choice(words) for _ in range(random.randint(0, 6)))),
                 'lines': [{'sku': random.choice(words).upper(), 'qty': random.randint(1, 9), 'price': round(random.random() * 100, 2)} for _ in range(random.randint(1, 5))]})
text = json.dumps(recs)
back = json.loads(text)
by_tag = {}
for r in back:
    total = sum(l['qty'] * l['price'] for l in r['lines'])
    for t in r['tags']:
        by_tag.setdefault(t, []).append((total, r['name']))
out = []
for t, v in sorted(by_tag.items()):
    v.sort(reverse=True)
    out.append('%s: %s' % (t, ', '.join('%s=%.2f' % (n, x) for x, n in v[:5])))
print(len(text), len(out), sum(len(s) for s in out))
