// Checks run the same way against the SDK in Node.js (node/*.test.js) and in a Chromium page
// (browser/*.test.js, lib/page_sdk.js): they take anything with the SDK subscription's methods,
// whose rejections carry the protocol error `code`.
import assert from 'node:assert/strict';

// `sub` is subscribed to a channel holding exactly {i: 1..10} at offsets 1..10 (one epoch):
// history limit, since, reverse, position only, everything, paging forward by 4 to the end,
// and 112 for a wrong epoch or a future offset.
export async function assertHistoryPaging(sub) {
  const is = (h) => h.publications.map((p) => p.data.i);
  const top = await sub.history({ limit: 0 });
  assert.equal(top.offset, 10);
  assert.deepEqual(top.publications, []);
  const epoch = top.epoch;
  assert.deepEqual(is(await sub.history({ limit: 3 })), [1, 2, 3]);
  assert.deepEqual(is(await sub.history({ limit: 3, since: { offset: 3, epoch } })), [4, 5, 6]);
  assert.deepEqual(is(await sub.history({ limit: 3, reverse: true })), [10, 9, 8]);
  assert.deepEqual(is(await sub.history({ limit: 3, reverse: true, since: { offset: 8, epoch } })), [7, 6, 5]);
  assert.deepEqual(is(await sub.history({ limit: -1 })), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const pages = [];
  let since = { offset: 0, epoch };
  for (;;) {
    const page = await sub.history({ limit: 4, since });
    if (page.publications.length === 0) break;
    pages.push(is(page));
    since = { offset: page.publications.at(-1).offset, epoch };
  }
  assert.deepEqual(pages, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
  for (const bad of [{ offset: 1, epoch: 'other' }, { offset: 99, epoch }]) {
    await assert.rejects(sub.history({ limit: 1, since: bad }), (e) => e.code === 112, JSON.stringify(bad));
  }
}
