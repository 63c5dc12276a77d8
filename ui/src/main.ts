// First: a usable locale before uPlot loads (see lib/locale-guard.ts).
import './lib/locale-guard';
import { mount } from 'svelte';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import App from './App.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('no #app element');
export default mount(App, { target });
