// The 404 pages: an unknown address (404.html), and /r/ with no or an invalid room name
// (room-404.html), which names what it was given (as text, never HTML).
import { $, initPage } from './common.js';
import { t, onLangChange } from './i18n.js';

initPage();

const name = $('[data-testid="room-name-invalid"]');
let given = location.pathname.replace(/^\/r\/?/, '');
try { given = decodeURIComponent(given); } catch { /* keep it as sent */ }
if (name && given) {
  const shown = given.length > 80 ? `${given.slice(0, 80)}…` : given;
  // Not through t()'s parameters: a name starting with "@" would be taken for a key.
  const render = () => { name.textContent = t('nf_room_invalid').replace('{room}', shown); };
  delete name.dataset.i18n;
  render();
  onLangChange(render);
}
