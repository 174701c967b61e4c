// Cursor pagination over GET /v1/videos, the openai SDK's way: `await client.list()` gives one page, and
// `for await (const v of client.list())` walks every video, fetching the next page (after = last_id) when needed.
import type { Video, VideoList } from '../shared/api/videos.ts';

export class VideoPage implements VideoList {
  readonly object = 'list' as const;
  readonly data: Video[];
  readonly has_more: boolean;
  readonly first_id: string | null;
  readonly last_id: string | null;
  // private (#) so that JSON.stringify(page) is exactly the API's list object
  readonly #next: (after: string) => PagePromise;

  constructor(body: VideoList, next: (after: string) => PagePromise) {
    this.data = body.data;
    this.has_more = body.has_more;
    this.first_id = body.first_id;
    this.last_id = body.last_id;
    this.#next = next;
  }

  hasNextPage(): boolean {
    return this.has_more && this.last_id !== null;
  }

  /** The following page; throws when there is none (check hasNextPage()). */
  async getNextPage(): Promise<VideoPage> {
    if (!this.hasNextPage() || this.last_id === null) throw new Error('no next page: has_more is false');
    return this.#next(this.last_id);
  }

  /** This page and every following one. */
  async *iterPages(): AsyncGenerator<VideoPage> {
    let page: VideoPage = this;
    for (;;) {
      yield page;
      if (!page.hasNextPage()) return;
      page = await page.getNextPage();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Video> {
    for await (const page of this.iterPages()) yield* page.data;
  }
}

/** A request for one page: await it for the page, or iterate it for every item of it and the pages after it. */
export class PagePromise implements PromiseLike<VideoPage>, AsyncIterable<Video> {
  readonly #load: () => Promise<VideoPage>;
  #page: Promise<VideoPage> | undefined;

  constructor(load: () => Promise<VideoPage>) {
    this.#load = load;
  }

  // Lazy: nothing is sent until the caller awaits or iterates, so an unused PagePromise never rejects unobserved.
  #get(): Promise<VideoPage> {
    this.#page ??= this.#load();
    return this.#page;
  }

  // biome-ignore lint/suspicious/noThenProperty: a PromiseLike is exactly a thing with then()
  then<A = VideoPage, B = never>(onOk?: ((p: VideoPage) => A | PromiseLike<A>) | null, onErr?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.#get().then(onOk, onErr);
  }

  catch<B = never>(onErr?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<VideoPage | B> {
    return this.#get().catch(onErr);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Video> {
    yield* await this.#get();
  }
}
