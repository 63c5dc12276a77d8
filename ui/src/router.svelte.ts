// Hash routing: #/webinars, #/webinars/<uid>?session=<id>, #/people, #/people/<uid>,
// #/deliveries, #/deliveries/<id>, #/setup.
import { parseHash, type Route } from './lib/route';

class Router {
  route = $state<Route>(parseHash(typeof location === 'undefined' ? '' : location.hash));
  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('hashchange', () => {
        this.route = parseHash(location.hash);
      });
    }
  }
}

export const router = new Router();

export function go(hash: string, replace = false) {
  if (replace) history.replaceState(null, '', hash);
  else history.pushState(null, '', hash);
  router.route = parseHash(location.hash);
}
