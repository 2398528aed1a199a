// Every user-visible string, in English and Russian. The language comes from the browser
// (navigator.languages) unless the user picked one with the switch (saved in localStorage).
//
// In HTML: data-i18n="key" (text), data-i18n-placeholder / -aria-label / -title (attributes),
// data-i18n-args='{"name":"ada"}' (parameters). A parameter value "@key" is itself translated.

export const LANG_KEY = 'webcall.lang';
export const LANGS = ['en', 'ru'];

const ruPlural = (n, one, few, many) => {
  const a = Math.abs(n) % 100, b = a % 10;
  if (a > 10 && a < 20) return many;
  if (b === 1) return one;
  if (b >= 2 && b <= 4) return few;
  return many;
};

/** A wait in whole seconds as minutes and seconds: "14 min 47 s" / "14 мин 47 с". */
export function formatDuration(seconds, l = lang) {
  const total = Math.max(0, Math.ceil(Number(seconds) || 0));
  const m = Math.floor(total / 60);
  const sec = total % 60;
  const [mu, su] = l === 'ru' ? ['мин', 'с'] : ['min', 's'];
  if (!m) return `${sec} ${su}`;
  return sec ? `${m} ${mu} ${sec} ${su}` : `${m} ${mu}`;
}

const STRINGS = {
  en: {
    // pages and common
    auth_page_title: 'WebCall — Sign in',
    tagline: 'Video calls on your own server',
    skip_to_form: 'Skip to the form',
    skip_to_content: 'Skip to content',
    language: 'Language',
    dismiss: 'Dismiss',
    retry: 'Try again',
    refresh: 'Refresh',
    notice_insecure: 'This page is not on a secure origin (HTTPS or localhost), so the browser will not give it your camera or microphone. You can still join, listen, watch and chat.',
    // sign in / register
    account: 'Account',
    sign_in: 'Sign in',
    create_account: 'Create account',
    register_submit: 'Create account',
    login_user: 'Email or username',
    password: 'Password',
    show_password: 'Show password',
    hide_password: 'Hide password',
    email: 'Email',
    username: 'Username',
    username_hint: '3–32 letters, digits, dots, dashes or underscores',
    password_hint: 'At least 8 characters',
    secret: 'Registration secret',
    secret_hint: 'Ask the person who runs this server',
    auth_foot: 'Calls go browser to browser or through this server only.',
    err_required: 'Please fill this in.',
    err_invalid_credentials: 'Wrong email, username or password.',
    err_registration_secret_invalid: 'That registration secret is not right.',
    err_email_taken: 'This email is already registered. Try signing in.',
    err_username_taken: 'This username is taken. Pick another one.',
    err_invalid_email: 'Enter a valid email address.',
    err_invalid_username: 'Use 3–32 letters, digits, dots, dashes or underscores.',
    err_invalid_password: 'Use 8 to 128 characters.',
    err_invalid_secret: 'Enter the registration secret.',
    err_invalid_login: 'Enter your email or username.',
    err_validation_failed: 'Something in the form is not valid.',
    err_too_many_attempts: (p) => `Too many attempts. Try again in ${formatDuration(p.s, 'en')}.`,
    err_network: 'Cannot reach the server. Check your connection.',
    err_server: 'Something went wrong ({code}). Please try again.',
    err_unreachable: 'Cannot reach the server right now.',
    // lobby
    logout: 'Log out',
    lobby_eyebrow: 'Your own call server',
    lobby_title: 'Start or join a call',
    lobby_sub: 'Pick a room name. The room starts when you join; share its link and people come straight in.',
    room_name: 'Room name',
    room_placeholder: 'team-standup',
    room_hint: '1–64 letters, digits, - or _',
    join: 'Join',
    feature_link: 'Send the link — people join in one click',
    feature_volume: 'Turn each person up or down, up to 200%',
    feature_private: 'Media goes browser to browser or through this server only',
    live_rooms: 'Rooms',
    more_rooms: 'Show more rooms',
    err_room_limit: 'You own as many rooms as one account may. Delete one of yours first.',
    err_room_rate: 'You created many rooms just now. Try again later, or join an existing room.',
    rooms_empty: 'Nobody is in a call right now.',
    rooms_empty_sub: 'Start one — it shows up here for everyone.',
    rooms_unavailable: 'The room list is not available. You can still join a room by name.',
    rooms_offline: 'Cannot reach the server. Retrying…',
    room_quiet: 'Empty',
    room_by: 'by {name}',
    people_n: (p) => `${p.n} ${p.n === 1 ? 'person' : 'people'}`,
    delete_room: 'Delete room {name}',
    room_deleted_ok: 'Room {name} deleted',
    err_room_name: 'Use 1–64 letters, digits, - or _.',
    err_room_name_link: '“{room}” is not a valid room name.',
    err_not_room_owner: 'Only the person who created the room can do that.',
    // call
    status_connecting: 'Connecting…',
    status_connected: 'Connected',
    status_reconnecting: 'Reconnecting…',
    status_closed: 'Disconnected',
    copy_link: 'Copy link',
    link_copied: 'Link copied — send it to invite people',
    link_is: 'Invite link: {url}',
    you: 'You',
    hand_raised: 'Hand raised',
    connecting_peer: 'Connecting…',
    mic_on: 'Microphone on',
    mic_off: 'Microphone off',
    volume_for: 'Volume for {name}',
    kick_name: 'Remove {name} from the call',
    call_controls: 'Call controls',
    mic: 'Mic',
    mic_title: 'Microphone (M)',
    cam: 'Camera',
    cam_title: 'Camera (V)',
    screen: 'Share',
    screen_title: 'Share your screen',
    hand: 'Hand',
    hand_title: 'Raise hand (H)',
    leave: 'Leave',
    chat: 'Chat',
    close_chat: 'Close chat',
    load_earlier: 'Earlier messages',
    chat_empty: 'No messages yet. Say hello!',
    chat_placeholder: 'Write a message…',
    chat_input_label: 'Message. Enter sends, Shift+Enter starts a new line.',
    send: 'Send',
    chat_too_long: 'Too long: 2000 characters at most',
    chat_rejected: 'The message was not sent.',
    not_connected: 'Not connected — wait a moment and try again.',
    peer_joined: '{name} joined',
    peer_left: '{name} left',
    peer_lost: '{name} lost the connection',
    peer_kicked: '{name} was removed from the call',
    hand_up: '{name} raised a hand',
    notice_audio_only: 'Joined with the microphone only: {why}',
    notice_receive_only: 'Joined without camera and microphone — you can watch, listen and chat: {why}',
    notice_audio_blocked: 'The browser is holding the sound until you interact with the page.',
    enable_sound: 'Turn sound on',
    why_denied: 'access was denied. Allow it in the address bar and rejoin.',
    why_no_device: 'no device was found.',
    why_busy: 'the device is in use by another app.',
    why_insecure: 'the page is not on HTTPS.',
    why_failed: 'the device could not be opened.',
    mic_failed: 'Cannot use the microphone: {why}',
    cam_failed: 'Cannot use the camera: {why}',
    screen_failed: 'Screen sharing did not start.',
    err_rate_limited: 'Slow down: too many messages.',
    end_kicked: 'You were removed from “{room}” by its owner.',
    end_room_deleted: 'The room “{room}” was deleted by its owner.',
    end_room_full: 'The room “{room}” is full.',
    end_room_limit: '“{room}” could not be created: you own as many rooms as one account may, or created many just now. Delete one of your rooms or try again later.',
    end_rate_limited: 'You were disconnected from “{room}” for sending too much.',
    end_too_big: 'You were disconnected from “{room}”: a message was too big.',
    end_closed: 'The connection to “{room}” was closed.',
    demo_badge: 'Demo',
    // connection check
    check_page_title: 'WebCall — Connection check',
    check_title: 'Can calls connect from here?',
    check_intro: "This page asks your browser to reach this server's STUN and TURN relay the way a call would, and says what will work from this network.",
    check_direct: 'Direct calls',
    check_udp: 'Relay over UDP',
    check_tcp: 'Relay over TCP',
    check_tls: 'Relay over TLS (HTTPS port)',
    check_running: 'Checking…',
    check_again: 'Check again',
    check_back: 'Back to WebCall',
    check_details: 'Details',
    check_no_servers: 'Could not get the list of servers (are you signed in?).',
    check_not_offered: 'This server does not offer it.',
    check_error: 'The browser could not run this check.',
    check_direct_ok: 'Your public address is {where}: calls can go straight to people on most other networks.',
    check_direct_host_only: 'No public address found: direct calls will work only with people on your own network; the relay covers the rest.',
    check_direct_fail: 'STUN did not answer: direct calls across networks are unlikely.',
    check_relay_ok: 'The relay gave you an address ({where}): calls work even when direct paths are blocked.',
    check_udp_fail: 'The relay did not answer over UDP (a firewall may block UDP 3478 or the relay ports).',
    check_tcp_fail: 'The relay did not answer over TCP (a firewall may block TCP 3478).',
    check_tls_fail: 'The relay did not answer over TLS (the HTTPS port is blocked, or its certificate is not trusted).',
    check_sum_all: 'All good: calls will connect from this network.',
    check_sum_relay: 'Calls will connect, through the relay when needed.',
    check_sum_tcp_only: 'Calls will connect through the relay over TCP only: expect a little more delay. Ask the network admin to allow UDP.',
    check_sum_tls_only: 'Calls will connect through the relay over TLS on the HTTPS port only: expect a little more delay. This network lets out little else.',
    check_sum_direct_only: 'Calls will connect only where a direct path exists: the relay is unreachable from here. Tell the server admin.',
    check_sum_none: 'Calls are unlikely to connect from this network. Send the details below to the server admin.',
    // --- 404 pages ---
    nf_page_title: 'WebCall — Page not found',
    nf_title: 'This page does not exist',
    nf_text: 'The address may be mistyped, or the page has moved. Calls start from the list of rooms.',
    nf_to_rooms: 'Go to the rooms',
    nf_room_page_title: 'WebCall — Room not found',
    nf_room_title: 'No such room',
    nf_room_empty: 'This link names no room.',
    nf_room_invalid: '“{room}” is not a valid room name.',
    nf_room_rule: 'A room name is 1–64 Latin letters, digits, “-” or “_”, as in /r/team-call.',
    nf_room_hint: 'Check the link you were sent, or pick or create a room in the lobby.',
    nf_to_lobby: 'Open the lobby',

    // --- feedback in the call ---
    leave_call: 'Leave the call',
    cancel: 'Cancel',
    reconnecting_banner: 'Connection lost — reconnecting…',
    reconnected: 'Connected again',
    peer_reconnecting: 'Reconnecting…',
    quality_good: 'Good connection',
    quality_fair: 'Fair connection',
    quality_poor: 'Poor connection',
    quality_unknown: 'Measuring the connection…',
    quality_detail_mbps: '{level} — {rtt} ms, {loss} % lost, {rate} Mbit/s',
    quality_detail_kbps: '{level} — {rtt} ms, {loss} % lost, {rate} kbit/s',
    react: 'React',
    react_title: 'Send a reaction',
    reaction_label: 'Reaction {emoji}',
    kick_confirm_title: 'Remove {name} from the call?',
    kick_confirm_body: '{name} is disconnected at once. They can come back with the room link.',
    kick_confirm_ok: 'Remove',
    delete_confirm_title: 'Delete the room {name}?',
    delete_confirm_body: 'The call in it ends for everyone and its chat is deleted. This cannot be undone.',
    delete_confirm_ok: 'Delete room',
    leave_confirm_title: 'Leave the call?',
    leave_confirm_body: 'You will leave “{room}”. You can come back with its link.',
    leave_confirm_ok: 'Leave',
    logout_confirm_title: 'Leave the call and log out?',
    logout_confirm_body: 'You will leave “{room}” and sign out of this browser.',
    logout_confirm_ok: 'Log out',
    alone_title: 'You are the only one here',
    alone_sub: 'Share this link to invite people:',
    left_title: 'You left “{room}”',
    left_sub: 'Left by mistake? You can go straight back.',
    rejoin: 'Rejoin',
    back_to_rooms: 'Back to rooms',
  },
  ru: {
    auth_page_title: 'WebCall — Вход',
    tagline: 'Видеозвонки на вашем собственном сервере',
    skip_to_form: 'К форме',
    skip_to_content: 'К содержимому',
    language: 'Язык',
    dismiss: 'Закрыть',
    retry: 'Повторить',
    refresh: 'Обновить',
    notice_insecure: 'Страница открыта не по защищённому адресу (HTTPS или localhost), поэтому браузер не даст ей камеру и микрофон. Подключиться, слушать, смотреть и писать в чат всё равно можно.',
    account: 'Учётная запись',
    sign_in: 'Войти',
    create_account: 'Регистрация',
    register_submit: 'Зарегистрироваться',
    login_user: 'Email или имя пользователя',
    password: 'Пароль',
    show_password: 'Показать пароль',
    hide_password: 'Скрыть пароль',
    email: 'Email',
    username: 'Имя пользователя',
    username_hint: '3–32 символа: буквы, цифры, точки, дефисы, подчёркивания',
    password_hint: 'Не меньше 8 символов',
    secret: 'Код регистрации',
    secret_hint: 'Спросите у того, кто держит этот сервер',
    auth_foot: 'Звонки идут напрямую или только через этот сервер.',
    err_required: 'Заполните это поле.',
    err_invalid_credentials: 'Неверный email, имя пользователя или пароль.',
    err_registration_secret_invalid: 'Неверный код регистрации.',
    err_email_taken: 'Этот email уже зарегистрирован. Попробуйте войти.',
    err_username_taken: 'Это имя уже занято. Выберите другое.',
    err_invalid_email: 'Введите правильный email.',
    err_invalid_username: '3–32 символа: буквы, цифры, точки, дефисы, подчёркивания.',
    err_invalid_password: 'От 8 до 128 символов.',
    err_invalid_secret: 'Введите код регистрации.',
    err_invalid_login: 'Введите email или имя пользователя.',
    err_validation_failed: 'В форме есть ошибка.',
    err_too_many_attempts: (p) => `Слишком много попыток. Повторите через ${formatDuration(p.s, 'ru')}.`,
    err_network: 'Сервер недоступен. Проверьте подключение.',
    err_server: 'Что-то пошло не так ({code}). Попробуйте ещё раз.',
    err_unreachable: 'Сервер сейчас недоступен.',
    logout: 'Выйти из аккаунта',
    lobby_eyebrow: 'Ваш собственный сервер звонков',
    lobby_title: 'Начните звонок или присоединитесь',
    lobby_sub: 'Придумайте название комнаты. Комната появится, когда вы войдёте; отправьте ссылку — и люди попадут прямо в звонок.',
    room_name: 'Название комнаты',
    room_placeholder: 'planerka',
    room_hint: '1–64 символа: латинские буквы, цифры, - или _',
    join: 'Войти',
    feature_link: 'Отправьте ссылку — вход в один клик',
    feature_volume: 'Громкость каждого собеседника, до 200%',
    feature_private: 'Видео и звук идут напрямую или через этот сервер',
    live_rooms: 'Комнаты',
    more_rooms: 'Показать ещё комнаты',
    err_room_limit: 'У вас уже столько комнат, сколько можно одной учётной записи. Сначала удалите одну из своих.',
    err_room_rate: 'Вы только что создали много комнат. Попробуйте позже или войдите в существующую.',
    rooms_empty: 'Сейчас никто не разговаривает.',
    rooms_empty_sub: 'Начните звонок — комната появится здесь для всех.',
    rooms_unavailable: 'Список комнат недоступен. Войти в комнату по названию всё равно можно.',
    rooms_offline: 'Сервер недоступен. Пробуем снова…',
    room_quiet: 'Пусто',
    room_by: 'владелец: {name}',
    people_n: (p) => `${p.n} ${ruPlural(p.n, 'человек', 'человека', 'человек')}`,
    delete_room: 'Удалить комнату {name}',
    room_deleted_ok: 'Комната {name} удалена',
    err_room_name: '1–64 символа: латинские буквы, цифры, - или _.',
    err_room_name_link: '«{room}» — недопустимое название комнаты.',
    err_not_room_owner: 'Это может только создатель комнаты.',
    status_connecting: 'Подключение…',
    status_connected: 'В сети',
    status_reconnecting: 'Переподключение…',
    status_closed: 'Отключено',
    copy_link: 'Ссылка',
    link_copied: 'Ссылка скопирована — отправьте её собеседникам',
    link_is: 'Ссылка для приглашения: {url}',
    you: 'Вы',
    hand_raised: 'Поднята рука',
    connecting_peer: 'Соединение…',
    mic_on: 'Микрофон включён',
    mic_off: 'Микрофон выключен',
    volume_for: 'Громкость: {name}',
    kick_name: 'Удалить {name} из звонка',
    call_controls: 'Управление звонком',
    mic: 'Микрофон',
    mic_title: 'Микрофон (M)',
    cam: 'Камера',
    cam_title: 'Камера (V)',
    screen: 'Экран',
    screen_title: 'Показать экран',
    hand: 'Рука',
    hand_title: 'Поднять руку (H)',
    leave: 'Выход',
    chat: 'Чат',
    close_chat: 'Закрыть чат',
    load_earlier: 'Ранние сообщения',
    chat_empty: 'Сообщений пока нет. Поздоровайтесь!',
    chat_placeholder: 'Напишите сообщение…',
    chat_input_label: 'Сообщение. Enter — отправить, Shift+Enter — новая строка.',
    send: 'Отправить',
    chat_too_long: 'Слишком длинно: не больше 2000 символов',
    chat_rejected: 'Сообщение не отправлено.',
    not_connected: 'Нет соединения — подождите немного и повторите.',
    peer_joined: '{name} подключается',
    peer_left: '{name} выходит из звонка',
    peer_lost: '{name}: связь потеряна',
    peer_kicked: '{name} удалён(а) из звонка',
    hand_up: '{name} поднимает руку',
    notice_audio_only: 'Вы подключились только с микрофоном: {why}',
    notice_receive_only: 'Вы подключились без камеры и микрофона — можно смотреть, слушать и писать в чат: {why}',
    notice_audio_blocked: 'Браузер не включает звук, пока вы не нажмёте что-нибудь на странице.',
    enable_sound: 'Включить звук',
    why_denied: 'доступ запрещён. Разрешите его в адресной строке и войдите снова.',
    why_no_device: 'устройство не найдено.',
    why_busy: 'устройство занято другой программой.',
    why_insecure: 'страница открыта не по HTTPS.',
    why_failed: 'устройство не удалось открыть.',
    mic_failed: 'Микрофон недоступен: {why}',
    cam_failed: 'Камера недоступна: {why}',
    screen_failed: 'Не удалось показать экран.',
    err_rate_limited: 'Помедленнее: слишком много сообщений.',
    end_kicked: 'Создатель комнаты «{room}» удалил вас из звонка.',
    end_room_deleted: 'Создатель удалил комнату «{room}».',
    end_room_full: 'Комната «{room}» заполнена.',
    end_room_limit: '«{room}» не создана: у вас уже столько комнат, сколько можно одной учётной записи, или вы только что создали много. Удалите одну из своих комнат или попробуйте позже.',
    end_rate_limited: 'Вы отключены от «{room}»: слишком много сообщений.',
    end_too_big: 'Вы отключены от «{room}»: слишком большое сообщение.',
    end_closed: 'Соединение с «{room}» закрыто.',
    demo_badge: 'Демо',
    // connection check
    check_page_title: 'WebCall — Проверка связи',
    check_title: 'Получится ли созвониться отсюда?',
    check_intro: 'Страница просит браузер достучаться до STUN и TURN-ретранслятора этого сервера так же, как это делает звонок, и говорит, что заработает из этой сети.',
    check_direct: 'Прямые звонки',
    check_udp: 'Ретранслятор по UDP',
    check_tcp: 'Ретранслятор по TCP',
    check_tls: 'Ретранслятор по TLS (порт HTTPS)',
    check_running: 'Проверяем…',
    check_again: 'Проверить ещё раз',
    check_back: 'Вернуться в WebCall',
    check_details: 'Подробности',
    check_no_servers: 'Не удалось получить список серверов (вы вошли?).',
    check_not_offered: 'Этот сервер его не предлагает.',
    check_error: 'Браузер не смог выполнить проверку.',
    check_direct_ok: 'Ваш внешний адрес {where}: звонки пойдут напрямую к людям из большинства других сетей.',
    check_direct_host_only: 'Внешний адрес не найден: напрямую получится только с людьми из вашей сети, остальное возьмёт на себя ретранслятор.',
    check_direct_fail: 'STUN не ответил: прямые звонки между сетями маловероятны.',
    check_relay_ok: 'Ретранслятор выдал вам адрес ({where}): звонки пройдут, даже если прямой путь закрыт.',
    check_udp_fail: 'Ретранслятор не ответил по UDP (возможно, файрвол закрывает UDP 3478 или порты ретрансляции).',
    check_tcp_fail: 'Ретранслятор не ответил по TCP (возможно, файрвол закрывает TCP 3478).',
    check_tls_fail: 'Ретранслятор не ответил по TLS (порт HTTPS закрыт или его сертификату нет доверия).',
    check_sum_all: 'Всё в порядке: звонки из этой сети будут соединяться.',
    check_sum_relay: 'Звонки будут соединяться, при необходимости через ретранслятор.',
    check_sum_tcp_only: 'Звонки пройдут только через ретранслятор по TCP — с небольшой задержкой. Попросите администратора сети открыть UDP.',
    check_sum_tls_only: 'Звонки пройдут только через ретранслятор по TLS на порту HTTPS — с небольшой задержкой. Эта сеть почти ничего больше не выпускает.',
    check_sum_direct_only: 'Звонки пройдут только там, где есть прямой путь: ретранслятор отсюда недоступен. Сообщите администратору сервера.',
    check_sum_none: 'Из этой сети звонки вряд ли соединятся. Отправьте подробности ниже администратору сервера.',
    // --- 404 pages ---
    nf_page_title: 'WebCall — Страница не найдена',
    nf_title: 'Такой страницы нет',
    nf_text: 'Возможно, в адресе опечатка или страница переехала. Звонки начинаются со списка комнат.',
    nf_to_rooms: 'К списку комнат',
    nf_room_page_title: 'WebCall — Комната не найдена',
    nf_room_title: 'Такой комнаты нет',
    nf_room_empty: 'В этой ссылке не указана комната.',
    nf_room_invalid: '«{room}» — недопустимое название комнаты.',
    nf_room_rule: 'Название комнаты — от 1 до 64 латинских букв, цифр, «-» или «_», например /r/team-call.',
    nf_room_hint: 'Проверьте присланную ссылку или выберите либо создайте комнату в лобби.',
    nf_to_lobby: 'Открыть лобби',

    // --- feedback in the call ---
    leave_call: 'Покинуть звонок',
    cancel: 'Отмена',
    reconnecting_banner: 'Связь потеряна — переподключаемся…',
    reconnected: 'Связь восстановлена',
    peer_reconnecting: 'Переподключение…',
    quality_good: 'Хорошая связь',
    quality_fair: 'Связь так себе',
    quality_poor: 'Плохая связь',
    quality_unknown: 'Проверяем связь…',
    quality_detail_mbps: '{level} — {rtt} мс, потеряно {loss} %, {rate} Мбит/с',
    quality_detail_kbps: '{level} — {rtt} мс, потеряно {loss} %, {rate} кбит/с',
    react: 'Реакция',
    react_title: 'Отправить реакцию',
    reaction_label: 'Реакция {emoji}',
    kick_confirm_title: 'Удалить {name} из звонка?',
    kick_confirm_body: '{name} сразу отключится от звонка. Вернуться можно по ссылке на комнату.',
    kick_confirm_ok: 'Удалить',
    delete_confirm_title: 'Удалить комнату {name}?',
    delete_confirm_body: 'Звонок в ней завершится для всех, а её чат будет удалён. Отменить это нельзя.',
    delete_confirm_ok: 'Удалить комнату',
    leave_confirm_title: 'Покинуть звонок?',
    leave_confirm_body: 'Вы выйдете из «{room}». Вернуться можно по ссылке.',
    leave_confirm_ok: 'Покинуть',
    logout_confirm_title: 'Покинуть звонок и выйти из аккаунта?',
    logout_confirm_body: 'Вы выйдете из «{room}» и из учётной записи в этом браузере.',
    logout_confirm_ok: 'Выйти из аккаунта',
    alone_title: 'Вы здесь пока одни',
    alone_sub: 'Отправьте ссылку, чтобы позвать людей:',
    left_title: 'Вы вышли из «{room}»',
    left_sub: 'Вышли случайно? Можно сразу вернуться.',
    rejoin: 'Вернуться',
    back_to_rooms: 'К списку комнат',
  },
};

function detect() {
  const saved = localStorage.getItem(LANG_KEY);
  if (LANGS.includes(saved)) return saved;
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const l of prefs) {
    const base = String(l).toLowerCase().split('-')[0];
    if (LANGS.includes(base)) return base;
  }
  return 'en';
}

let lang = detect();
const listeners = new Set();

export const getLang = () => lang;

export function setLang(l) {
  if (!LANGS.includes(l) || l === lang) return;
  lang = l;
  localStorage.setItem(LANG_KEY, l);
  for (const cb of listeners) cb(l);
}

export function onLangChange(cb) { listeners.add(cb); }

/** Translate key with {params}. A param "@key" is translated too. */
export function t(key, params) {
  const v = STRINGS[lang][key] ?? STRINGS.en[key];
  if (v === undefined) { console.warn('i18n: missing', key); return key; }
  const p = {};
  for (const [k, x] of Object.entries(params || {})) p[k] = typeof x === 'string' && x.startsWith('@') ? t(x.slice(1)) : x;
  if (typeof v === 'function') return v(p);
  return v.replace(/\{(\w+)\}/g, (m, k) => (k in p ? String(p[k]) : m));
}

export function formatTime(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return '';
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  const opts = sameDay ? { hour: '2-digit', minute: '2-digit' } : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(lang, opts).format(date);
}

const SEL = '[data-i18n],[data-i18n-placeholder],[data-i18n-aria-label],[data-i18n-title],[data-time]';

/** (Re)translate root and everything under it. */
export function applyI18n(root = document) {
  if (root === document) document.documentElement.lang = lang;
  const nodes = root.matches?.(SEL) ? [root] : [];
  nodes.push(...root.querySelectorAll(SEL));
  for (const el of nodes) {
    const d = el.dataset;
    let args;
    try { args = d.i18nArgs ? JSON.parse(d.i18nArgs) : undefined; } catch { args = undefined; }
    if (d.i18n) el.textContent = t(d.i18n, args);
    if (d.i18nPlaceholder) el.setAttribute('placeholder', t(d.i18nPlaceholder, args));
    if (d.i18nAriaLabel) el.setAttribute('aria-label', t(d.i18nAriaLabel, args));
    if (d.i18nTitle) el.setAttribute('title', t(d.i18nTitle, args));
    if (d.time) el.textContent = formatTime(new Date(d.time));
  }
}
